"""Noise triggers (Zhang et al. 2018): owner images plus one fixed Gaussian noise pattern, relabelled."""

from __future__ import annotations

import numpy as np
import torch

from wmstudio.catalog import AUTO_LABEL_MODE
from wmstudio.triggers.base import BuildContext, TriggerSet, assign_labels, pick_from_pool, rng_for
from wmstudio.triggers.imageops import to_float, to_uint8


def build(ctx: BuildContext, size: int, seed: int, label_mode: str = "target", target_class: int = 0,
          noise_std: float = 0.3, source_class: int = -1, **_: object) -> TriggerSet:
    rng = rng_for(seed, "noise")
    mode = AUTO_LABEL_MODE["noise"] if label_mode == "auto" else label_mode
    images, true = pick_from_pool(ctx, rng, size, target_class if mode == "target" else None, "noise", source_class)
    pattern = torch.from_numpy(rng.normal(0.0, noise_std, ctx.shape).astype(np.float32))
    noisy = to_uint8(to_float(images) + pattern)  # in [0, 1] pixel space, clamped before 8-bit
    labels = assign_labels(mode, rng, ctx.num_classes, size, target_class, true)
    return TriggerSet(noisy, torch.from_numpy(labels), torch.from_numpy(true.astype(np.int64)), "noise", seed,
                      {"label_mode": mode, "noise_std": noise_std, "source_class": source_class},
                      control_images=images, control_kind="paired")
