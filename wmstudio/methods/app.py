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

from wmstudio.methods.common import embed_stream, trigger_rows
from wmstudio.methods.dual_bn import bn_route
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
