"""kind=hessian: the plane of the top two eigenvectors of the clean or trigger loss's Hessian at the
centre model (``wmstudio.landscape.hessian_axes``); also the eigenvectors of kind=hessian_line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wmstudio.landscape.kinds.base import Created, LandscapeKind

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import torch

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.points import GridPoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


def hessian_directions(ctx: LogContext, spec: LandscapeSpec, log_path: Path, k: int, callback: EventCallback,
                       control: RunControl | None) -> tuple[torch.Tensor, dict[str, Any]]:
    """The top ``k`` eigenvectors of the chosen loss at the centre model (loaded into ``ctx.model``), and
    the attributes recording them (loss, images, eigenvalues, Lanczos' residuals and steps)."""
    from wmstudio.curvature.job import loss_inputs
    from wmstudio.errors import RunLogError
    from wmstudio.landscape.hessian_axes import top_eigenvectors

    if spec.loss == "trigger":
        if len(ctx.trigger_labels) == 0:
            raise RunLogError(f"{log_path}: the log holds no trigger set (loss=trigger needs one)")
        x, y = loss_inputs(ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)
    else:
        clean = ctx.test if spec.data == "test" else ctx.owner
        x, y = loss_inputs(clean.images, clean.labels, ctx.normalizer, spec.hessian_images)
    ctx.model.load_state_dict(ctx.state(spec.center))
    axes = top_eigenvectors(ctx.model, x, y, k, spec.hessian_iter, spec.seed, spec.loss, spec.center, callback, control)
    attrs = axes.record(spec.loss, len(y), spec.center)
    attrs["axis_names"] = [f"Hessian eigenvector {i + 1} ({spec.loss} loss, eigenvalue {v:.4g})"
                           for i, v in enumerate(axes.values)]
    return axes.vectors, attrs


class HessianKind(LandscapeKind):
    help = "the top two Hessian eigenvectors"
    centred = True

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np

        from wmstudio.landscape.directions import Plane
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.kinds.planar import plane_landscape
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        center = stage_vector(ctx, pv, spec.center)
        vectors, attrs = hessian_directions(ctx, spec, log_path, 2, callback, control)
        attrs.update({"axis_units": "parameter-space distance along unit Hessian eigenvectors",
                      "buffers": f"fixed: {spec.center}"})
        xs = ys = np.linspace(-spec.span, spec.span, spec.resolution)
        return plane_landscape(Plane(center, vectors[0], vectors[1]), xs, ys, [spec.center], np.zeros((1, 2)), attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
        from wmstudio.landscape.kinds.planar import centred_grid

        return centred_grid(ctx, ls, vectors)


KIND = HessianKind()
