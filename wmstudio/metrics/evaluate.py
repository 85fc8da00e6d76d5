"""Loss and accuracy of a model on uint8 tensors already on its device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.data.batches import Normalizer


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer,
             batch_size: int = 1000, memory_format: torch.memory_format = torch.contiguous_format) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, in eval mode and inference mode; restores the model's mode."""
    if len(labels) == 0:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    scale, shift = normalizer.tensors(images.device)
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    try:
        with torch.inference_mode():
            for start in range(0, len(labels), batch_size):
                x = images[start:start + batch_size].float().mul_(scale).sub_(shift).contiguous(memory_format=memory_format)
                y = labels[start:start + batch_size]
                out = model(x)
                loss_sum += F.cross_entropy(out, y, reduction="sum")
                correct += (out.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    n = len(labels)
    return float(loss_sum) / n, float(correct) / n
