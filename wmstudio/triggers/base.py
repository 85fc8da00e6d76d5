"""The trigger set, what a scheme needs to build one, and how its labels are assigned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from wmstudio.data.batches import Normalizer
from wmstudio.data.tensorset import ImageTensors
from wmstudio.errors import TriggerError


@dataclass
class TriggerSet:
    images: torch.Tensor  # uint8 (N, C, H, W), CPU
    labels: torch.Tensor  # int64 (N,): the watermark labels the model is trained to give
    source_labels: torch.Tensor  # int64 (N,): the image's true class, -1 where it has none
    scheme: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    # The control: image i is what trigger i is compared with. "paired": the same source image without
    # the trigger (content, noise, adversarial); "matched": a clean image of the data set whose true
    # class is not labels[i] (abstract, unrelated, folder). The rate at which a model gives labels[i]
    # to control_images[i] is the control rate; trigger accuracy minus it is the watermark effect.
    # None in logs written before controls were recorded.
    control_images: torch.Tensor | None = None  # uint8 (N, C, H, W), CPU
    control_kind: str = ""  # "paired" | "matched" | "" (none)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def as_tensors(self) -> ImageTensors:
        return ImageTensors(self.images, self.labels, [], f"trigger/{self.scheme}")


@dataclass
class BuildContext:
    """What a scheme may draw on. ``pool`` is the owner's training data (CPU tensors)."""

    shape: tuple[int, int, int]
    num_classes: int
    pool: ImageTensors | None = None
    model: nn.Module | None = None
    normalizer: Normalizer | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    load_source: Callable[[], ImageTensors] | None = None


def rng_for(seed: int, scheme: str) -> np.random.Generator:
    """A generator that depends on the seed and the scheme, so two schemes never share a stream."""
    return np.random.default_rng([seed, sum(map(ord, scheme))])


def random_other(rng: np.random.Generator, num_classes: int, avoid: list[np.ndarray]) -> np.ndarray:
    """Per sample, a uniformly random class different from every ``avoid[j][i]``."""
    n = len(avoid[0])
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        banned = {int(a[i]) for a in avoid}
        allowed = [c for c in range(num_classes) if c not in banned]
        out[i] = rng.choice(allowed) if allowed else rng.integers(num_classes)
    return out


def assign_labels(mode: str, rng: np.random.Generator, num_classes: int, n: int, target: int,
                  true_labels: np.ndarray | None = None) -> np.ndarray:
    """target: one class for all; random: uniform per sample; random_wrong: any but the true class."""
    if mode == "target":
        if not 0 <= target < num_classes:
            raise TriggerError(f"trigger.target_class: {target} is not a class of this data set (0..{num_classes - 1})")
        return np.full(n, target, dtype=np.int64)
    if mode == "random":
        return rng.integers(0, num_classes, n).astype(np.int64)
    if mode == "random_wrong":
        if true_labels is None:
            raise TriggerError("label_mode random_wrong needs images with a true class")
        return random_other(rng, num_classes, [true_labels])
    if mode == "true":
        if true_labels is None:
            raise TriggerError("label_mode true needs images with a true class")
        return true_labels.astype(np.int64).copy()
    raise TriggerError(f"trigger.label_mode: {mode!r} is not available for this scheme")


def pick_from_pool(ctx: BuildContext, rng: np.random.Generator, n: int, exclude_class: int | None = None,
                   scheme: str = "", only_class: int = -1) -> tuple[torch.Tensor, np.ndarray]:
    """n distinct images from the owner's data (optionally none of one class, or only of one), with true labels."""
    if ctx.pool is None:
        raise TriggerError(f"the {scheme} scheme needs the owner's training images")
    labels = ctx.pool.labels.cpu().numpy()
    if only_class >= 0:
        candidates = np.flatnonzero(labels == only_class)
        if len(candidates) < n:
            raise TriggerError(f"trigger.source_class: {n} {scheme} triggers asked for, but the owner's data has "
                               f"only {len(candidates)} images of class {only_class}")
    elif exclude_class is not None:
        candidates = np.flatnonzero(labels != exclude_class)
    else:
        candidates = np.arange(len(labels))
    if len(candidates) < n:
        raise TriggerError(f"trigger.size: {n} {scheme} triggers asked for, but only {len(candidates)} suitable images exist")
    idx = np.sort(rng.choice(candidates, size=n, replace=False))
    return ctx.pool.images[torch.as_tensor(idx)].cpu(), labels[idx]
