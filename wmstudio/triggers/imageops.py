"""Small image conversions shared by the trigger schemes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8, clamped first so nothing wraps."""
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def fit_shape(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Resize (bilinear, antialiased) and convert channels (grey <-> RGB) to ``shape`` = (C, H, W)."""
    c, h, w = shape
    x = to_float(images)
    if x.shape[1] != c:
        if x.shape[1] == 1:
            x = x.expand(-1, c, -1, -1)
        elif c == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise ValueError(f"cannot convert {x.shape[1]}-channel images to {c} channels")
    if x.shape[-2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return to_uint8(x)
