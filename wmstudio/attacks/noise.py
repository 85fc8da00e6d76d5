"""Gaussian weight noise: every parameter tensor gets noise of std ``attack.noise_scale`` times its own RMS
(drawn from a generator seeded by ``run.seed``, so a run is repeatable)."""

from __future__ import annotations

from typing import Any

import torch

from wmstudio.attacks.stage import one_shot
from wmstudio.session import Session


@torch.no_grad()
def add_noise(model: torch.nn.Module, scale: float, seed: int) -> dict[str, Any]:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    ratios = {}
    for name, p in model.named_parameters():
        rms = p.detach().float().pow(2).mean().sqrt()
        noise = torch.randn(p.shape, generator=gen).to(p.device, p.dtype) * (scale * rms)
        p.add_(noise)
        ratios[name] = float(noise.pow(2).mean().sqrt() / rms.clamp_min(1e-30))
    return {"noise_scale": scale, "noise_rms_over_weight_rms": ratios}


def run(s: Session) -> dict[str, float]:
    return one_shot(s, lambda: add_noise(s.model, s.cfg.attack.noise_scale, s.cfg.run.seed + 505))
