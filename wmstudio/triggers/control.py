"""The control set of a trigger set: what trigger accuracy is compared with.

A trigger accuracy alone cannot tell a watermark from a lean: a model that sends 30% of all images
to the target class has 30% "trigger accuracy" without any watermark. The control measures that
lean on the same model. Trigger ``i`` is paired with control image ``i``:

- ``paired`` (content, noise, adversarial): the same source image without the trigger. The scheme
  sets it when it builds the set.
- ``matched`` (abstract, unrelated, folder, and any set whose source images are not known): a clean
  held-out image of the data set whose true class is not the trigger's label, of the trigger's
  source class where it has one. Built here, reproducibly from the trigger seed.

The control rate is the share of control images given their trigger's label; the watermark effect
is trigger accuracy minus the control rate.
"""

from __future__ import annotations

import numpy as np
import torch

from wmstudio.data.tensorset import ImageTensors
from wmstudio.errors import TriggerError
from wmstudio.triggers.base import TriggerSet, rng_for


def matched_indices(labels: np.ndarray, source_labels: np.ndarray, pool_labels: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Per trigger, a pool index whose class is the trigger's source class (when it has one that is
    not its label), else any class but the trigger's label; drawn without replacement while possible."""
    used = np.zeros(len(pool_labels), dtype=bool)
    out = np.empty(len(labels), dtype=np.int64)
    for i, (lab, src) in enumerate(zip(labels, source_labels, strict=True)):
        ok = pool_labels != lab
        if 0 <= src != lab and (pool_labels == src).any():
            ok = pool_labels == src
        if not ok.any():
            raise TriggerError(f"control set: no clean image whose class differs from trigger label {int(lab)}")
        fresh = ok & ~used
        candidates = np.flatnonzero(fresh if fresh.any() else ok)
        out[i] = candidates[rng.integers(len(candidates))]
        used[out[i]] = True
    return out


def attach_control(ts: TriggerSet, pool: ImageTensors | None) -> TriggerSet:
    """Give ``ts`` a control set when it has none: matched clean images from ``pool`` (the held-out test
    images). A set that already has one (a paired control) is returned unchanged."""
    if ts.control_images is not None or pool is None or len(pool) == 0:
        return ts
    if tuple(pool.images.shape[1:]) != tuple(ts.images.shape[1:]):
        return ts  # a trigger set of another shape cannot be compared on this data (refused elsewhere)
    rng = rng_for(ts.seed, "control")
    idx = matched_indices(ts.labels.numpy(), ts.source_labels.numpy(), pool.labels.cpu().numpy(), rng)
    ts.control_images = pool.images[torch.as_tensor(idx, device=pool.images.device)].cpu()
    ts.control_kind = "matched"
    return ts


def control_rate(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of control images given their trigger's label."""
    if len(labels) == 0:
        return float("nan")
    return float((predictions == labels).float().mean())
