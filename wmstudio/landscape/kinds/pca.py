"""kind=pca: the plane of the first two principal components of the recorded trajectories (Li et al.
2018), centred on a model, with the stages' models and the trajectories projected on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wmstudio.landscape.kinds.base import Created, LandscapeKind, attack_stage, too_few_stages

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.points import GridPoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


class PcaKind(LandscapeKind):
    help = "the trajectories' two principal components"
    centred = True
    equal_aspect = True

    def default_models(self, available: list[str]) -> list[str]:
        """The attack's and the restoration's trajectories."""
        return [attack_stage(available), "restore"]

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None:
        super().resolve(s, available)
        too_few_stages(s, available, 1, "at least 1")

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np
        import torch

        from wmstudio.errors import RunLogError
        from wmstudio.landscape.directions import pca_plane
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.kinds.planar import extent, plane_landscape
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        center = stage_vector(ctx, pv, spec.center)
        rows = [ctx.reader.trajectory(m) for m in spec.models]
        if any(len(r) == 0 for r in rows):
            raise RunLogError(f"{log_path}: kind=pca needs recorded trajectories of {spec.models} "
                              "(run with run.record_trajectory = true)")
        pts = torch.from_numpy(np.concatenate(rows)).to(center.device)
        try:
            plane, explained = pca_plane(pts, center)
        except ValueError as exc:
            raise RunLogError(f"{log_path}: {exc}") from exc
        available = ctx.stages_with_weights()
        names = [n for n in ("embed", "finetune", "restore") if n in available]
        listed = [plane.project(stage_vector(ctx, pv, n))[:2] for n in names]
        if "embed" not in names and "finetune" in spec.models:
            # an attack run started from another run's watermarked model: it is the first row
            # of the fine-tuning trajectory
            names.insert(0, "embed")
            first = torch.from_numpy(ctx.reader.trajectory("finetune")[0]).to(center.device)
            listed.insert(0, plane.project(first)[:2])
        coords = np.asarray(listed)
        fit = np.concatenate([coords, np.asarray([plane.project(r)[:2] for r in pts])])
        attrs = {"explained_variance": list(explained), "buffers": f"fixed: {spec.center}"}
        (x0, x1), (y0, y1) = extent(fit, spec.margin)
        xs, ys = np.linspace(x0, x1, spec.resolution), np.linspace(y0, y1, spec.resolution)
        attrs["axis_units"] = "parameter-space distance (orthonormal axes)"
        return plane_landscape(plane, xs, ys, names, coords, attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
        from wmstudio.landscape.kinds.planar import centred_grid

        return centred_grid(ctx, ls, vectors)

    def axis_names(self, attrs: dict[str, Any]) -> tuple[str, str] | None:
        """The principal components with the share of the trajectory's variance each explains."""
        explained = attrs.get("explained_variance")
        if isinstance(explained, (list, tuple)) and len(explained) == 2:
            return tuple(f"PC {k + 1} ({100 * float(v):.1f}% of variance)" for k, v in enumerate(explained))  # type: ignore[return-value]
        return None


KIND = PcaKind()
