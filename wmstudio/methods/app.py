"""APP (Gan et al., CVPR 2023): watermarks robust to the weight changes that would remove them.

Each step: (1) the gradient of the trigger loss gives the direction that removes the watermark
fastest; the weights are moved along it by a perturbation of relative L2 size ``app_eps`` in
every layer; (2) the trigger loss, weighted ``app_alpha``, is taken at those perturbed weights;
(3) the ordinary loss of the whole batch (owner data and triggers) at the unperturbed weights,
through the main BatchNorm. In the perturbed pass the trigger samples go through auxiliary
BatchNorm statistics (see :mod:`wmstudio.methods.dual_bn`, as in AdvProp), so the adversarial
pass never shifts the statistics the model is verified with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.errors import StageFailed
from wmstudio.methods.common import embed_stream, trigger_rows
from wmstudio.methods.dual_bn import bn_route
from wmstudio.metrics.collapse import collapse_reason
from wmstudio.session import Session
from wmstudio.stages.training import StageHooks, train_stage


def adversarial_perturbation(params: list[nn.Parameter], grads: list[torch.Tensor | None], eps: float) -> list[torch.Tensor]:
    """Per layer: eps * ||w|| * g / ||g|| (zero where the gradient vanishes)."""
    out = []
    for p, g in zip(params, grads, strict=True):
        if g is None:
            out.append(torch.zeros_like(p))
            continue
        out.append(g * (eps * p.detach().norm() / g.norm().clamp_min(1e-12)))
    return out


class AppHooks(StageHooks):
    def __init__(self, s: Session, k: int) -> None:
        self.k = k
        self.num_classes = s.num_classes
        self.worked = False  # an evaluation of this stage found the model not collapsed
        self.emit = getattr(s, "emit", None)
        self.eps, self.alpha = s.cfg.embed.app_eps, s.cfg.embed.app_alpha
        self.pending: list[torch.Tensor | None] | None = None
        self.last_rel_sizes: list[float] = []  # ||v|| / ||w|| per layer at the last step
        self.last_trigger_loss = (float("nan"), float("nan"))  # before, after the perturbation

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = self.k
        if k == 0 or len(y) <= k:
            return F.cross_entropy(model(x), y)
        x_t, y_t = x[-k:], y[-k:]
        params = [p for p in model.parameters() if p.requires_grad]
        with bn_route(model, "trigger"):
            loss_t = F.cross_entropy(model(x_t), y_t)
            grads = torch.autograd.grad(loss_t, params, allow_unused=True)
            v = adversarial_perturbation(params, list(grads), self.eps)
            with torch.no_grad():
                for p, d in zip(params, v, strict=True):
                    p.add_(d)
            try:
                loss_adv = F.cross_entropy(model(x_t), y_t)
                self.pending = list(torch.autograd.grad(self.alpha * loss_adv, params, allow_unused=True))
            finally:
                with torch.no_grad():
                    for p, d in zip(params, v, strict=True):
                        p.sub_(d)
        # per layer the trigger pass uses (the main BatchNorm is not used by it: no gradient, no perturbation)
        self.last_rel_sizes = [float(d.norm() / p.detach().norm().clamp_min(1e-12))
                               for p, d, g in zip(params, v, grads, strict=True) if g is not None and p.detach().norm() > 0]
        self.last_trigger_loss = (float(loss_t.detach()), float(loss_adv.detach()))
        self.params = params
        return F.cross_entropy(model(x), y)

    def after_evaluation(self, row: dict[str, float], epoch: int, last: bool) -> None:
        """Refuse a model APP has collapsed: the first collapsed evaluation after one that was not (the
        stage's starting point included) stops the stage with the reason. APP's trigger loss at the
        perturbed weights, weighted ``app_alpha``, can outweigh the whole batch's loss on a small model
        (at ``app_alpha = 1`` every small CPU model of docs/attacks_cifar10_small.md ended at 16% test
        accuracy); a watermark on such a model shows nothing. A model that never worked in this stage
        (from scratch, too few epochs) is not APP's doing for certain: a collapsed final model then gets
        a warning with the same advice, and the reports flag it."""
        reason = collapse_reason(row.get("test_acc", float("nan")), row.get("majority_share", float("nan")),
                                 self.num_classes)
        if not reason:
            self.worked = True
            return
        advice = (f"embed.app_alpha = {self.alpha:g} weighs the trigger loss at weights moved by embed.app_eps = "
                  f"{self.eps:g} against the whole batch's loss. Lower embed.app_alpha (0.1 embedded on the small CPU "
                  "models) or embed.app_eps, or embed from a trained model (model.checkpoint, e.g. "
                  "\"base:cifar10_fastcnn\")")
        if self.worked:
            raise StageFailed(f"embed: APP collapsed the model at epoch {epoch} ({reason}); {advice}")
        if last and self.emit is not None:
            from wmstudio.events import Warning as Note

            self.emit(Note(f"APP: the embedded model is collapsed ({reason}) and was never working in this stage; "
                           f"its watermark shows nothing. {advice}"))

    def after_backward(self, model: nn.Module) -> None:
        if self.pending is None:
            return
        for p, g in zip(self.params, self.pending, strict=True):
            if g is not None:
                p.grad = g if p.grad is None else p.grad.add_(g)
        self.pending = None


def run(s: Session) -> dict[str, float]:
    stream = embed_stream(s)
    hooks = AppHooks(s, trigger_rows(stream))
    s.method_state = hooks  # type: ignore[attr-defined]
    return train_stage(s, "embed", s.cfg.embed, stream, drift_reference="initial", hooks=hooks)
