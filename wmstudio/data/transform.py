"""Bringing a data set to the input a model expects: image side (``data.image_size``) and channels.

Applied once, when a data set is loaded, to the uint8 tensors (so the fast batch path is unchanged).
Resizing is bilinear with antialiasing; grey images become three channels by repeating the grey
plane, colour images one channel by averaging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wmstudio.data.tensorset import DataPair, ImageTensors

CHUNK = 512  # images resized at once (bounds the float copy's memory)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size)."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], CHUNK):
        x = images[start:start + CHUNK].float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + CHUNK] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, channels, H, W): 1 -> 3 repeats the plane, 3 -> 1 averages."""
    c = images.shape[1]
    if channels in (0, c):
        return images
    if c == 1:
        return images.expand(-1, channels, -1, -1).contiguous()
    if channels == 1:
        return images.float().mean(dim=1, keepdim=True).round_().to(torch.uint8)
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


def fit_images(images: torch.Tensor, image_size: int = 0, channels: int = 0) -> torch.Tensor:
    out = convert_channels(images, channels)
    return resize_images(out, image_size) if image_size else out


def _fit_split(split: ImageTensors, image_size: int, channels: int) -> ImageTensors:
    return ImageTensors(fit_images(split.images, image_size, channels), split.labels, split.classes, split.name)


def fit_pair(pair: DataPair, image_size: int = 0, channels: int = 0) -> DataPair:
    """The data set with every image resized to ``image_size`` (0: kept) and ``channels`` channels (0: kept)."""
    if not image_size and not channels:
        return pair
    return DataPair(_fit_split(pair.train, image_size, channels), _fit_split(pair.test, image_size, channels), pair.name)
