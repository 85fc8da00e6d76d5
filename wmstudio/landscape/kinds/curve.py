"""kind=curve: a quadratic Bezier curve between two stages' models with one bend, trained on the owner's
clean data (Garipov et al. 2018), evaluated together with the straight segment between the same ends
(``wmstudio.landscape.curve`` trains and walks it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wmstudio.errors import ConfigError
from wmstudio.landscape.kinds.base import Created, LandscapeKind, attack_stage

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.curve import CurvePoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape


class CurveKind(LandscapeKind):
    help = "a quadratic Bezier curve with one trained bend between two stages"
    line = True
    straight_segment = True
    position_word = "t"
    setup_text = "training the curve's bend"
    ray_refusal = ("kind=curve runs in one process (its points are few; the bend's training is one sequence of "
                   "steps): drop --ray")

    def default_models(self, available: list[str]) -> list[str]:
        return ["embed", attack_stage(available)]

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None:
        """Two different stages with weights. BatchNorm statistics are always re-estimated along a curve
        (its points are no stage's model), and the points are evaluated in fp32; no centre."""
        s.models = s.models or self.default_models(available)
        if len(s.models) != 2 or s.models[0] == s.models[1]:
            raise ConfigError("models", f"kind=curve connects exactly 2 different stages (e.g. embed,finetune or "
                                        f"finetune,restore), got {s.models}")
        for m in s.models:
            if m not in available:
                raise ConfigError("models", f"kind=curve needs the stage {m!r} with saved weights; this log has "
                                            f"weights for: {', '.join(available) or 'none'}")
        s.bn, s.precision, s.center = "recompute", "fp32", ""

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        """Train the bend between the two stages (the estimate first; ``control`` can cancel, and then
        nothing is stored): the empty landscape holds the bend."""
        import time

        import numpy as np

        from wmstudio.errors import RunLogError
        from wmstudio.events import CurveTrainingProgress, CurveTrainingStarted
        from wmstudio.landscape.curve import BendTrainer
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.stage_weights import stage_vector
        from wmstudio.progress import estimate_text

        pv = ParamVector(ctx.model)
        w0, w1 = (stage_vector(ctx, pv, m) for m in spec.models)
        if float((w1 - w0).norm()) < 1e-12:
            raise RunLogError(f"{log_path}: kind=curve: {spec.models[0]!r} and {spec.models[1]!r} have identical "
                              "weights: nothing to connect")
        owner = ctx.owner
        trainer = BendTrainer(ctx.model, w0, w1, owner.images, owner.labels, ctx.normalizer, spec.curve_lr,
                              spec.curve_batch, spec.seed)
        steps = spec.curve_epochs * trainer.steps_per_epoch
        per = trainer.time_step()
        batch_bytes = owner.images[:spec.curve_batch].numel() * owner.images.element_size()
        memory = 7 * pv.numel * 4 + owner.images.numel() * owner.images.element_size() + 4 * batch_bytes
        callback(CurveTrainingStarted(spec.name, steps, per, steps * per, memory))
        last = [0.0]

        def on_step(epoch: int, done: int, total: int, loss: float) -> None:
            now = time.perf_counter()
            if done == total or now - last[0] >= 0.25:  # a few events a second at most
                last[0] = now
                callback(CurveTrainingProgress(spec.name, epoch, done, total, loss))

        trained = trainer.train(spec.curve_epochs, control, on_step)
        t = np.linspace(0.0, 1.0, spec.resolution)
        attrs: dict[str, Any] = trained.attrs(spec.curve_epochs, spec.curve_lr, spec.curve_batch, len(owner.labels))
        attrs.update({"model_names": list(spec.models),
                      "curve_estimate": estimate_text((steps, per, steps * per, memory)),
                      "axis_units": f"curve parameter t (0: {spec.models[0]}, 1: {spec.models[1]})",
                      "buffers": f"re-estimated at each point on {spec.bn_batches} batches of the owner's data, "
                                 "along the curve and the straight segment alike",
                      "ends_distance": float((w1 - w0).norm()),
                      "bend_offset": float((trained.bend - (w0 + w1) / 2).norm())})
        arrays = {"t": t, "model_coords": np.array([0.0, 1.0]), "bend": trained.bend.cpu().numpy().astype(np.float32)}
        return Created((len(t),), arrays, attrs)

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> CurvePoints:
        import torch

        from wmstudio.landscape.curve import CurvePoints
        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.stage_weights import stage_vector

        pv, models = ParamVector(ctx.model), ls.spec.models
        vec = vectors()
        return CurvePoints(stage_vector(ctx, pv, models[0]), torch.from_numpy(vec["bend"]).to(ctx.device),
                           stage_vector(ctx, pv, models[1]), ls.axes["t"])

    def path_label(self, attrs: dict[str, Any]) -> str:
        """The curve parameter t, with the stages at its ends."""
        return attrs.get("axis_units", "t")


KIND = CurveKind()
