"""kind=hessian_line: the path along the top eigenvector of the loss's Hessian at the centre model,
over [-span, span]; the centre's BatchNorm statistics at every point."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wmstudio.landscape.kinds.base import Created, LandscapeKind

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.points import AxisPoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


class HessianLineKind(LandscapeKind):
    help = "along the top Hessian eigenvector"
    line = True
    centred = True

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np

        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.kinds.hessian import hessian_directions
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        vectors, attrs = hessian_directions(ctx, spec, log_path, 1, callback, control)
        center = stage_vector(ctx, pv, spec.center)
        t = np.linspace(-spec.span, spec.span, spec.resolution)
        arrays = {"t": t, "model_coords": np.zeros(1), "origin": center.cpu().numpy().astype(np.float32),
                  "directions": vectors.cpu().numpy().astype(np.float32)}
        attrs.update({"model_names": [spec.center], "buffers": f"fixed: {spec.center}",
                      "axis_units": "parameter-space distance along the top Hessian eigenvector (unit norm)"})
        return Created((len(t),), arrays, attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> AxisPoints:
        import torch

        from wmstudio.landscape.points import AxisPoints
        from wmstudio.landscape.stage_weights import stage_buffers

        vec, dev = vectors(), ctx.device
        return AxisPoints(torch.from_numpy(vec["origin"]).to(dev), torch.from_numpy(vec["directions"][0]).to(dev),
                          ls.axes["t"], stage_buffers(ctx, ls.spec.center))


KIND = HessianLineKind()
