"""Structured channel pruning: in every conv layer, the ``attack.sparsity`` fraction of output channels whose
filters have the smallest L1 norm is removed (filter, bias and the following BatchNorm's scale and shift
zeroed, so the channel outputs exactly zero)."""

from __future__ import annotations

from typing import Any

import torch

from wmstudio.attacks.stage import conv_with_norm, one_shot, zero_channels
from wmstudio.session import Session


@torch.no_grad()
def prune_channels(model: torch.nn.Module, sparsity: float) -> dict[str, Any]:
    pruned: dict[str, list[int]] = {}
    for name, conv, bn in conv_with_norm(model):
        k = int(round(sparsity * conv.out_channels))
        if k == 0:
            continue
        norms = conv.weight.detach().abs().flatten(1).sum(1)
        idx = torch.topk(norms, k, largest=False).indices.sort().values
        zero_channels(conv, bn, idx)
        pruned[name] = idx.tolist()
    total = sum(c.out_channels for _, c, _ in conv_with_norm(model))
    return {"pruned_channels": pruned, "channel_sparsity_reached": sum(map(len, pruned.values())) / max(total, 1)}


def run(s: Session) -> dict[str, float]:
    return one_shot(s, lambda: prune_channels(s.model, s.cfg.attack.sparsity))
