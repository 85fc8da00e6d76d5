"""kind=displacement: the plane of the attack's displacement (attacked - watermarked) and the
restoration's (restored - attacked), centred on the attacked model, in multiples of each step."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wmstudio.errors import ConfigError
from wmstudio.landscape.kinds.base import Created, LandscapeKind, attack_stage

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.points import GridPoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape

# the three stages' roles (the defaults' names are filled from the log)
ROLES = ("the watermarked model, start of the attack displacement",
         "the attacked model, end of the attack and start of the restoration displacement",
         "the restored model, end of the restoration displacement")


class DisplacementKind(LandscapeKind):
    help = "the attack's and the restoration's displacements"
    centred = True

    def default_models(self, available: list[str]) -> list[str]:
        return ["embed", attack_stage(available), "restore"]

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None:
        """Exactly three stages with weights, in their roles; centred on one of them (the attacked)."""
        if not s.models:
            s.models = self.default_models(available)
        if len(s.models) != 3:
            raise ConfigError("models", f"kind=displacement needs exactly 3 stages (watermarked, attacked, "
                                        f"restored), got {s.models}")
        for m, role in zip(s.models, ROLES, strict=True):
            if m not in available:
                raise ConfigError("models", f"kind=displacement needs the stage {m!r} ({role}) with saved "
                                            f"weights; this log has weights for: {', '.join(available) or 'none'}")
        s.center = s.center or s.models[1]
        if s.center not in s.models:
            raise ConfigError("center", f"kind=displacement is centred on one of its stages {s.models}, "
                                        f"got {s.center!r}")

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np

        from wmstudio.errors import RunLogError
        from wmstudio.landscape.directions import Plane
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.kinds.planar import plane_landscape
        from wmstudio.landscape.stage_weights import stage_vector

        pv = ParamVector(ctx.model)
        a, b, c = (stage_vector(ctx, pv, m) for m in spec.models)
        if float((b - a).norm()) < 1e-12 or float((c - b).norm()) < 1e-12:
            raise RunLogError(f"{log_path}: kind=displacement: {spec.models[0]!r} and {spec.models[1]!r}, or "
                              f"{spec.models[1]!r} and {spec.models[2]!r}, have identical weights: no displacement")
        plane = Plane(stage_vector(ctx, pv, spec.center), b - a, c - b)
        names = list(spec.models)
        projected = [plane.project(w) for w in (a, b, c)]
        if max(r for *_, r in projected) > 1e-3 * max(1.0, float((b - a).norm()), float((c - b).norm())):
            raise RunLogError(f"{log_path}: kind=displacement: the two displacements are parallel: no plane "
                              "(use kind=line)")
        coords = np.asarray([p[:2] for p in projected])
        half = float(np.abs(coords).max()) * (1 + spec.margin)
        xs = ys = np.linspace(-half, half, spec.resolution)
        attrs = {"axis_units": "multiples of each displacement (1 = the whole step)",
                 "axis_names": [f"attack: {names[1]} - {names[0]}", f"restoration: {names[2]} - {names[1]}"],
                 "displacements": [[names[0], names[1]], [names[1], names[2]]],
                 "buffers": "interpolated between the three models"}
        return plane_landscape(plane, xs, ys, names, coords, attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
        from wmstudio.landscape.kinds.planar import anchored_grid

        return anchored_grid(ctx, ls, vectors)


KIND = DisplacementKind()
