"""Loss and accuracy of a model on uint8 tensors already on its device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.data.batches import Normalizer


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer,
             batch_size: int = 1000, memory_format: torch.memory_format = torch.contiguous_format) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, in eval mode and inference mode; restores the model's mode."""
    loss, acc, _ = evaluate_with_predictions(model, images, labels, normalizer, batch_size, memory_format)
    return loss, acc


def evaluate_with_predictions(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalizer: Normalizer,
                              batch_size: int = 1000,
                              memory_format: torch.memory_format = torch.contiguous_format
                              ) -> tuple[float, float, torch.Tensor]:
    """As ``evaluate``, with the predicted class of every image (int64, on the images' device).

    A non-finite output row predicts -1 (no class): NaN logits must not count as class 0, the
    usual target class of a watermark.
    """
    if len(labels) == 0:
        return float("nan"), float("nan"), torch.zeros(0, dtype=torch.long, device=images.device)
    was_training = model.training
    model.eval()
    scale, shift = normalizer.tensors(images.device)
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    predictions = []
    try:
        with torch.inference_mode():
            for start in range(0, len(labels), batch_size):
                x = images[start:start + batch_size].float().mul_(scale).sub_(shift).contiguous(memory_format=memory_format)
                y = labels[start:start + batch_size]
                out = model(x)
                loss_sum += F.cross_entropy(out, y, reduction="sum")
                pred = torch.where(torch.isfinite(out).all(1), out.argmax(1), -1)
                correct += (pred == y).sum()
                predictions.append(pred)
    finally:
        model.train(was_training)
    n = len(labels)
    return float(loss_sum) / n, float(correct) / n, torch.cat(predictions)


def predict(model: nn.Module, images: torch.Tensor, normalizer: Normalizer, batch_size: int = 1000,
            memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """The predicted class of every image (-1 where the output is not finite), in eval and inference mode."""
    dummy = torch.zeros(len(images), dtype=torch.long, device=images.device)
    return evaluate_with_predictions(model, images, dummy, normalizer, batch_size, memory_format)[2]
