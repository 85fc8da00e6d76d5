"""kind=hessian_line: the path along the top eigenvector of the loss's Hessian at the centre model,
over [-span, span]; the centre's BatchNorm statistics at every point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wmstudio.landscape.kinds.base import CentredLineKind

if TYPE_CHECKING:
    from pathlib import Path

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.spec import LandscapeSpec


class HessianLineKind(CentredLineKind):
    help = "along the top Hessian eigenvector"

    def direction(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
                  control: RunControl | None) -> tuple[Any, dict[str, Any]]:
        from wmstudio.landscape.kinds.hessian import hessian_directions

        vectors, attrs = hessian_directions(ctx, spec, log_path, 1, callback, control)
        attrs["axis_units"] = "parameter-space distance along the top Hessian eigenvector (unit norm)"
        return vectors[0], attrs


KIND = HessianLineKind()
