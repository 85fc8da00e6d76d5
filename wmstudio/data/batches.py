"""The fast batch path: uint8 tensors on the device, whole-batch augmentation and normalisation.

No DataLoader, no PIL, no per-image Python in the training loop: a batch is one gather from the
device-resident uint8 tensor, one random crop + flip done as a single indexed gather, and one fused
scale-and-shift to normalised floats.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Normalizer:
    """uint8 -> normalised float: ``(x / 255 - mean) / std`` as one multiply-add."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    mode: str = field(default="", compare=False)  # how it was chosen (data.normalize; see normalization.py)
    source: str = field(default="", compare=False)  # the file that declared it, if one did

    @staticmethod
    def fit(images: torch.Tensor) -> Normalizer:
        x = images.float().div_(255.0)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return Normalizer(tuple(mean.tolist()), tuple(std.tolist()), "fit")

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        return 1.0 / (255.0 * std), mean / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        scale, shift = self.tensors(images.device)
        return images.float().mul_(scale).sub_(shift)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float -> [0, 1] pixel values."""
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        return x * std + mean


@dataclass
class Augment:
    padding: int = 4
    flip: bool = True

    @property
    def active(self) -> bool:
        return self.padding > 0 or self.flip


def crop_flip(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip of a whole (B, C, H, W) batch."""
    b, _, h, w = x.shape
    dev = x.device
    p = aug.padding
    rows = torch.arange(h, device=dev).expand(b, h)
    cols = torch.arange(w, device=dev).expand(b, w)
    if p > 0:
        x = F.pad(x, (p, p, p, p))
        rows = rows + torch.randint(0, 2 * p + 1, (b, 1), device=dev, generator=generator)
        cols = cols + torch.randint(0, 2 * p + 1, (b, 1), device=dev, generator=generator)
    if aug.flip:
        flip = torch.rand(b, 1, device=dev, generator=generator) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)
    bi = torch.arange(b, device=dev).view(b, 1, 1)
    out = x[bi, :, rows.unsqueeze(2), cols.unsqueeze(1)]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


class Sampler:
    """Endless stream of index chunks from a seeded permutation, reshuffled every pass."""

    def __init__(self, n: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.generator, self.device = n, generator, device
        self._perm = torch.empty(0, dtype=torch.long, device=device)
        self._pos = 0

    def take(self, k: int) -> torch.Tensor:
        parts = []
        while k > 0:
            if self._pos >= self._perm.numel():
                self._perm = torch.randperm(self.n, generator=self.generator, device=self.device)
                self._pos = 0
            chunk = self._perm[self._pos:self._pos + k]
            self._pos += chunk.numel()
            k -= chunk.numel()
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass
class Source:
    """Images and labels on the device, with the augmentation to apply to them (or None)."""

    images: torch.Tensor
    labels: torch.Tensor
    augment: Augment | None = None


class BatchStream:
    """Epochs of shuffled, augmented, normalised batches from a primary source, optionally mixed.

    ``extra`` sources (trigger set while embedding; owner data as the fine-tuning mitigation) each
    add ``round(batch_size * f / (1 - f))`` samples to every batch, so that they make up a fraction
    ``f`` of it, cycling through their own shuffled order.
    """

    def __init__(self, primary: Source, batch_size: int, normalizer: Normalizer, generator: torch.Generator,
                 extra: list[tuple[Source, float]] | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.primary, self.batch_size, self.normalizer, self.generator = primary, batch_size, normalizer, generator
        self.memory_format = memory_format
        dev = primary.images.device
        self._scale, self._shift = normalizer.tensors(dev)
        self.extra = []
        for src, frac in extra or []:
            k = int(round(batch_size * frac / (1.0 - frac))) if frac > 0 else 0
            if k > 0 and len(src.labels) > 0:
                self.extra.append((src, k, Sampler(len(src.labels), generator, dev)))

    def __len__(self) -> int:
        n = len(self.primary.labels)
        return (n + self.batch_size - 1) // self.batch_size

    def _prepare(self, src: Source, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = src.images[idx]
        if src.augment is not None and src.augment.active:
            x = crop_flip(x, src.augment, self.generator)
        x = x.float().mul_(self._scale).sub_(self._shift)  # the crop gather leaves x channels-last already
        return x.contiguous(memory_format=self.memory_format), src.labels[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.primary.labels)
        perm = torch.randperm(n, generator=self.generator, device=self.primary.images.device)
        for start in range(0, n, self.batch_size):
            x, y = self._prepare(self.primary, perm[start:start + self.batch_size])
            if self.extra:
                xs, ys = [x], [y]
                for src, k, sampler in self.extra:
                    ex, ey = self._prepare(src, sampler.take(k))
                    xs.append(ex)
                    ys.append(ey)
                x, y = torch.cat(xs).contiguous(memory_format=self.memory_format), torch.cat(ys)
            yield x, y
