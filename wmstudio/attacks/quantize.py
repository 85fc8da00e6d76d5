"""Post-training weight quantisation, simulated in floating point: each conv/linear weight tensor is rounded
to ``attack.bits``-bit signed integers, symmetric, with one scale per output channel
(``scale = max|w| / (2^(bits-1) - 1)``), and stored as ``integer * scale``. Biases and BatchNorm
parameters keep full precision (as in int8 deployment, where biases are int32)."""

from __future__ import annotations

from typing import Any

import torch

from wmstudio.attacks.stage import one_shot, weight_layers
from wmstudio.session import Session


def scales(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """One scale per output channel, shaped to broadcast against ``weight``."""
    qmax = 2 ** (bits - 1) - 1
    amax = weight.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
    return (amax / qmax).view(-1, *([1] * (weight.dim() - 1)))


@torch.no_grad()
def quantize_weights(model: torch.nn.Module, bits: int) -> dict[str, Any]:
    qmax = 2 ** (bits - 1) - 1
    err, norm = 0.0, 0.0
    for _, m in weight_layers(model):
        sc = scales(m.weight, bits)
        q = torch.clamp(torch.round(m.weight / sc), -qmax, qmax) * sc
        err += float(((q - m.weight) ** 2).sum())
        norm += float((m.weight ** 2).sum())
        m.weight.copy_(q)
    return {"bits": bits, "levels": 2 * qmax + 1, "relative_error": (err / max(norm, 1e-30)) ** 0.5,
            "layers": [n for n, _ in weight_layers(model)]}


def run(s: Session) -> dict[str, float]:
    return one_shot(s, lambda: quantize_weights(s.model, s.cfg.attack.bits))
