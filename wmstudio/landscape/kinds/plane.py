"""kind=plane: the plane through three stages' models (watermarked, fine-tuned, restored by default),
in orthonormal axes; BatchNorm statistics interpolated between the three."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wmstudio.errors import ConfigError
from wmstudio.landscape.kinds.base import Created, LandscapeKind, too_few_stages

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.points import GridPoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


class PlaneKind(LandscapeKind):
    help = "the plane through three stages' models"
    equal_aspect = True

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None:
        super().resolve(s, available)
        too_few_stages(s, available, 3, "exactly 3")
        if len(s.models) != 3:
            raise ConfigError("models", f"kind=plane needs exactly 3 stages, got {s.models}")

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np

        from wmstudio.errors import RunLogError
        from wmstudio.landscape.directions import plane_through
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.kinds.planar import extent, plane_landscape
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        w = [stage_vector(ctx, pv, m) for m in spec.models]
        try:
            plane = plane_through(*w)
        except ValueError as exc:
            raise RunLogError(f"{log_path}: {exc}") from exc
        coords = np.asarray([plane.project(v)[:2] for v in w])
        (x0, x1), (y0, y1) = extent(coords, spec.margin)
        xs, ys = np.linspace(x0, x1, spec.resolution), np.linspace(y0, y1, spec.resolution)
        attrs = {"buffers": "interpolated between the three models",
                 "axis_units": "parameter-space distance (orthonormal axes)"}
        return plane_landscape(plane, xs, ys, list(spec.models), coords, attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
        from wmstudio.landscape.kinds.planar import anchored_grid

        return anchored_grid(ctx, ls, vectors)


KIND = PlaneKind()
