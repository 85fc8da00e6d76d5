"""Unrelated triggers (Zhang et al. 2018): images of another data set, relabelled."""

from __future__ import annotations

import numpy as np
import torch

from wmstudio.catalog import AUTO_LABEL_MODE
from wmstudio.errors import TriggerError
from wmstudio.triggers.base import BuildContext, TriggerSet, assign_labels, rng_for
from wmstudio.triggers.imageops import fit_shape


def build(ctx: BuildContext, size: int, seed: int, label_mode: str = "target", target_class: int = 0,
          **_: object) -> TriggerSet:
    if ctx.load_source is None:
        raise TriggerError("trigger.source: the unrelated scheme needs another data set (trigger.source.name/root)")
    source = ctx.load_source()
    if len(source) < size:
        raise TriggerError(f"trigger.size: {size} unrelated triggers asked for, but {source.name} has {len(source)} images")
    rng = rng_for(seed, "unrelated")
    idx = np.sort(rng.choice(len(source), size=size, replace=False))
    images = fit_shape(source.images[torch.as_tensor(idx)], ctx.shape)
    mode = AUTO_LABEL_MODE["unrelated"] if label_mode == "auto" else label_mode
    labels = assign_labels(mode, rng, ctx.num_classes, size, target_class)
    return TriggerSet(images, torch.from_numpy(labels), torch.full((size,), -1, dtype=torch.long), "unrelated",
                      seed, {"label_mode": mode, "source": source.name})
