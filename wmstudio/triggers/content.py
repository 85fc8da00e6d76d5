"""Content triggers (Zhang et al. 2018): owner images with a visible stamp, relabelled."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wmstudio.catalog import AUTO_LABEL_MODE
from wmstudio.triggers.base import BuildContext, TriggerSet, assign_labels, pick_from_pool, rng_for

# A 7x7 "WM"-like glyph; scaled to the stamp's size with nearest-neighbour sampling.
GLYPH = np.array([
    [1, 0, 0, 0, 0, 0, 1],
    [1, 0, 0, 0, 0, 0, 1],
    [1, 0, 0, 1, 0, 0, 1],
    [1, 0, 1, 0, 1, 0, 1],
    [1, 1, 0, 0, 0, 1, 1],
    [1, 0, 0, 0, 0, 0, 1],
    [1, 1, 1, 1, 1, 1, 1],
], dtype=np.float32)


def stamp_mask(h: int, w: int, fraction: float) -> torch.Tensor:
    """A (H, W) mask with the glyph in the bottom-right corner, side ``fraction`` of the image."""
    side = max(3, int(round(min(h, w) * fraction)))
    glyph = F.interpolate(torch.from_numpy(GLYPH)[None, None], size=(side, side), mode="nearest")[0, 0]
    mask = torch.zeros(h, w)
    mask[h - side:, w - side:] = glyph
    return mask


def build(ctx: BuildContext, size: int, seed: int, label_mode: str = "target", target_class: int = 0,
          stamp_fraction: float = 0.35, source_class: int = -1, **_: object) -> TriggerSet:
    rng = rng_for(seed, "content")
    mode = AUTO_LABEL_MODE["content"] if label_mode == "auto" else label_mode
    images, true = pick_from_pool(ctx, rng, size, target_class if mode == "target" else None, "content", source_class)
    mask = stamp_mask(images.shape[2], images.shape[3], stamp_fraction).bool()
    stamped = images.clone()
    stamped[:, :, mask] = 255
    labels = assign_labels(mode, rng, ctx.num_classes, size, target_class, true)
    return TriggerSet(stamped, torch.from_numpy(labels), torch.from_numpy(true.astype(np.int64)), "content", seed,
                      {"label_mode": mode, "stamp_fraction": stamp_fraction, "source_class": source_class},
                      control_images=images, control_kind="paired")
