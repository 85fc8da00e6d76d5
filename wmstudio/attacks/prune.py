"""Global magnitude pruning (unstructured): the ``attack.sparsity`` fraction of all conv and linear weights
with the smallest magnitude, across layers, is set to zero."""

from __future__ import annotations

from typing import Any

import torch

from wmstudio.attacks.stage import one_shot, weight_layers
from wmstudio.session import Session


@torch.no_grad()
def global_magnitude_prune(model: torch.nn.Module, sparsity: float) -> dict[str, Any]:
    """Zero the ``sparsity`` fraction of conv/linear weights smallest in |w| (exactly that many, ties by index)."""
    layers = weight_layers(model)
    flat = torch.cat([m.weight.detach().abs().flatten() for _, m in layers])
    k = int(round(sparsity * flat.numel()))
    if k > 0:
        mask = torch.ones_like(flat, dtype=torch.bool)
        mask[torch.topk(flat, k, largest=False).indices] = False
        start = 0
        for _, m in layers:
            n = m.weight.numel()
            m.weight.mul_(mask[start:start + n].view_as(m.weight).to(m.weight.dtype))
            start += n
    zeros = {name: float((m.weight == 0).float().mean()) for name, m in layers}
    reached = sum(int((m.weight == 0).sum()) for _, m in layers) / flat.numel()
    return {"sparsity_reached": reached, "weights": flat.numel(), "layer_sparsity": zeros}


def run(s: Session) -> dict[str, float]:
    return one_shot(s, lambda: global_magnitude_prune(s.model, s.cfg.attack.sparsity))
