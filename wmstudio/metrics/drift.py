"""Weight drift from a reference model: L2 distance and cosine similarity, globally and per layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def layer_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Parameters grouped by the module that owns them (``conv1.weight`` + ``conv1.bias`` -> ``conv1``)."""
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        groups.setdefault(name.rsplit(".", 1)[0] if "." in name else name, []).append(name)
    return list(groups.items())


@dataclass
class Drift:
    l2: float
    rel: float  # l2 / ||reference||
    cos: float
    layer_l2: list[float]
    layer_cos: list[float]


class DriftTracker:
    """Holds a detached copy of the reference parameters and measures a model against it."""

    def __init__(self, model: nn.Module) -> None:
        self.groups = layer_groups(model)
        params = dict(model.named_parameters())
        self.reference = [torch.cat([params[n].detach().flatten() for n in names]).clone() for _, names in self.groups]
        self.ref_norm = float(torch.sqrt(sum((r.double() ** 2).sum() for r in self.reference)))

    @property
    def layer_names(self) -> list[str]:
        return [g for g, _ in self.groups]

    @torch.no_grad()
    def measure(self, model: nn.Module) -> Drift:
        params = dict(model.named_parameters())
        sq, dot, cur_sq = 0.0, 0.0, 0.0
        layer_l2, layer_cos = [], []
        for (_, names), ref in zip(self.groups, self.reference, strict=True):
            cur = torch.cat([params[n].detach().flatten() for n in names]).double()
            r = ref.double()
            d2 = float(((cur - r) ** 2).sum())
            dt, c2, r2 = float((cur * r).sum()), float((cur * cur).sum()), float((r * r).sum())
            sq, dot, cur_sq = sq + d2, dot + dt, cur_sq + c2
            layer_l2.append(d2 ** 0.5)
            layer_cos.append(dt / max((c2 * r2) ** 0.5, 1e-30))
        cos = dot / max((cur_sq ** 0.5) * self.ref_norm, 1e-30)
        return Drift(sq ** 0.5, sq ** 0.5 / max(self.ref_norm, 1e-30), cos, layer_l2, layer_cos)
