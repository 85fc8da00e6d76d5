"""Entangled watermarks, EWE (Jia et al., USENIX Security 2021).

Besides the cross-entropy on owner data and triggers, each step maximises the soft nearest
neighbour loss (SNNL, Frosst et al. 2019) between the penultimate-layer representations of the
trigger samples and of the clean samples of the target class: the two groups become hard to tell
apart, so the watermark shares the features the task needs and is harder to remove.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.methods.common import embed_stream, trigger_rows
from wmstudio.models import last_linear_name
from wmstudio.session import Session
from wmstudio.stages.training import StageHooks, train_stage


def snnl(features: torch.Tensor, groups: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft nearest neighbour loss: high when samples of different groups are each other's neighbours."""
    z = F.normalize(features.flatten(1), dim=1)
    d = torch.cdist(z, z).pow(2)
    sim = torch.exp(-d / temperature) * (1 - torch.eye(len(z), device=z.device))
    same = (groups[:, None] == groups[None, :]).float()
    num = (sim * same).sum(1).clamp_min(1e-12)
    den = sim.sum(1).clamp_min(1e-12)
    return -(num / den).log().mean()


class Penultimate:
    """Captures the input of the classifier head on every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        self.value: torch.Tensor | None = None
        head = model.get_submodule(last_linear_name(model))
        self.handle = head.register_forward_hook(lambda _m, inp, _out: setattr(self, "value", inp[0]))

    def close(self) -> None:
        self.handle.remove()


class EweHooks(StageHooks):
    def __init__(self, s: Session, k: int) -> None:
        e = s.cfg.embed
        self.k = k
        self.temperature, self.weight = e.ewe_temperature, e.ewe_weight
        self.target = e.ewe_target_class if e.ewe_target_class >= 0 else s.cfg.trigger.target_class
        self.features = Penultimate(s.model)
        self.last_snnl = float("nan")

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model(x)
        ce = F.cross_entropy(out, y)
        h = self.features.value
        if h is None or self.k == 0 or self.weight == 0:
            return ce
        n = len(y)
        is_trigger = torch.zeros(n, dtype=torch.bool, device=y.device)
        is_trigger[n - self.k:] = True
        chosen = is_trigger | (y == self.target)
        if chosen.sum() < 3 or is_trigger[chosen].all():
            return ce
        value = snnl(h[chosen], is_trigger[chosen].long(), self.temperature)
        self.last_snnl = float(value.detach())
        return ce - self.weight * value


def run(s: Session) -> dict[str, float]:
    stream = embed_stream(s)
    hooks = EweHooks(s, trigger_rows(stream))
    s.method_state = hooks  # type: ignore[attr-defined]
    try:
        return train_stage(s, "embed", s.cfg.embed, stream, drift_reference="initial", hooks=hooks)
    finally:
        hooks.features.close()
