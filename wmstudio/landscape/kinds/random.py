"""kind=random: two random directions around a centre model (filter-normalised by default, Li et al.
2018); with dir_type=states the BatchNorm running statistics move along them too."""

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
    from wmstudio.landscape.points import GridPoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


class RandomKind(LandscapeKind):
    help = "random directions around a centre model"
    centred = True
    state_directions = True

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np

        from wmstudio.landscape.directions import Plane, random_direction
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.kinds.planar import plane_landscape
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        center = stage_vector(ctx, pv, spec.center)
        d1 = random_direction(pv, center, spec.seed, spec.norm, spec.bias_bn)
        d2 = random_direction(pv, center, spec.seed + 1, spec.norm, spec.bias_bn)
        attrs = {"axis_units": "direction units (filter-normalised)" if spec.norm == "filter" else
                 f"direction units ({spec.norm} normalisation)", "direction_seeds": [spec.seed, spec.seed + 1],
                 "norm": spec.norm, "bias_bn": spec.bias_bn, "dir_type": spec.dir_type,
                 "buffers": f"fixed: {spec.center}"}
        if spec.dir_type == "states":
            attrs["buffers"] = (f"{spec.center}'s, moved along the directions: each running statistic's "
                                "direction is the statistic itself (Li et al.'s states rule), so a point (x, y) "
                                "scales them by 1 + x + y (variances clipped at 0)")
        xs = ys = np.linspace(-spec.span, spec.span, spec.resolution)
        return plane_landscape(Plane(center, d1, d2), xs, ys, [spec.center], np.zeros((1, 2)), attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
        from wmstudio.landscape.directions import state_directions
        from wmstudio.landscape.kinds.planar import stored_plane
        from wmstudio.landscape.points import GridPoints
        from wmstudio.landscape.stage_weights import stage_buffers

        spec = ls.spec
        plane = stored_plane(vectors, ctx.device)
        center = stage_buffers(ctx, spec.center)
        if spec.dir_type == "states":
            moves = (state_directions(center, spec.seed, spec.norm), state_directions(center, spec.seed + 1, spec.norm))
            return GridPoints(plane, ls.axes["x"], ls.axes["y"], buffers=center, buffer_directions=moves)
        return GridPoints(plane, ls.axes["x"], ls.axes["y"], buffers=center)


KIND = RandomKind()
