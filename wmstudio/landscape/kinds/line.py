"""kind=line: the straight path through the stages' models, in order, extended past both ends; the
BatchNorm statistics interpolated between the checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wmstudio.landscape.kinds.base import Created, LandscapeKind, too_few_stages

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.points import LinePoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


class LineKind(LandscapeKind):
    help = "the straight path through the stages' models"
    line = True
    resolution_why = "points per segment of the path"

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None:
        super().resolve(s, available)
        too_few_stages(s, available, 2, "at least 2")

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.points import line_layout
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        anchors = [stage_vector(ctx, pv, m) for m in spec.models]
        seg, frac, t, starts = line_layout(anchors, spec.resolution, spec.margin)
        arrays = {"t": t, "segment": seg, "frac": frac, "model_coords": starts}
        attrs = {"model_names": spec.models, "axis_units": "parameter-space distance along the path",
                 "buffers": "interpolated between checkpoints"}
        return Created((len(t),), arrays, attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> LinePoints:
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.points import LinePoints
        from wmstudio.landscape.stage_weights import stage_buffers, stage_vector

        pv, models = ParamVector(ctx.model), ls.spec.models
        return LinePoints([stage_vector(ctx, pv, m) for m in models], [stage_buffers(ctx, m) for m in models],
                          ls.axes["segment"], ls.axes["frac"], ls.axes["t"])


KIND = LineKind()
