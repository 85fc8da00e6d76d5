"""Abstract images with random labels (Adi et al. 2018).

The original 100 abstract images cannot be shipped, so they are generated procedurally: a colour
gradient background with random discs, bars and rings, in the data set's shape.
"""

from __future__ import annotations

import numpy as np
import torch

from wmstudio.catalog import AUTO_LABEL_MODE
from wmstudio.triggers.base import BuildContext, TriggerSet, assign_labels, rng_for


def _abstract_image(rng: np.random.Generator, c: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / max(h - 1, 1), xx / max(w - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    c0, c1 = rng.uniform(0, 1, c), rng.uniform(0, 1, c)
    img = c0[:, None, None] * (1 - ramp) + c1[:, None, None] * ramp
    for _ in range(rng.integers(3, 8)):
        colour = rng.uniform(0, 1, c)[:, None, None]
        cy, cx = rng.uniform(0, 1, 2)
        kind = rng.integers(0, 3)
        if kind == 0:  # disc
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(0.02, 0.12)
        elif kind == 1:  # bar at a random angle
            a = rng.uniform(0, np.pi)
            mask = np.abs(np.cos(a) * (xx - cx) + np.sin(a) * (yy - cy)) < rng.uniform(0.04, 0.15)
        else:  # ring
            r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            r0 = rng.uniform(0.15, 0.4)
            mask = np.abs(r - r0) < rng.uniform(0.03, 0.08)
        img = np.where(mask[None], colour, img)
    return img


def build(ctx: BuildContext, size: int, seed: int, label_mode: str = "random", target_class: int = 0,
          **_: object) -> TriggerSet:
    rng = rng_for(seed, "abstract")
    c, h, w = ctx.shape
    images = np.stack([_abstract_image(rng, c, h, w) for _ in range(size)])
    mode = AUTO_LABEL_MODE["abstract"] if label_mode == "auto" else label_mode
    labels = assign_labels(mode, rng, ctx.num_classes, size, target_class)
    return TriggerSet(torch.from_numpy(np.rint(images * 255).astype(np.uint8)), torch.from_numpy(labels),
                      torch.full((size,), -1, dtype=torch.long), "abstract", seed, {"label_mode": mode})
