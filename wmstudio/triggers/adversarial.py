"""Adversarial triggers: owner images perturbed by FGSM against the model being marked.

Labels per sample (``label_mode``): ``random_wrong`` any class but the true one; ``reached`` the class
the perturbation reaches; ``true`` the true class (frontier stitching, Le Merrer et al. 2019);
``random_other`` a random class that is neither the true nor the reached one (the multi-label FGSM
scheme of the research this product follows, and the default).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wmstudio.catalog import AUTO_LABEL_MODE
from wmstudio.errors import TriggerError
from wmstudio.triggers.base import (
    BuildContext,
    TriggerSet,
    assign_labels,
    pick_from_pool,
    random_other,
    rng_for,
)
from wmstudio.triggers.imageops import to_float, to_uint8


def fgsm(ctx: BuildContext, images: torch.Tensor, labels: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One FGSM step of size ``eps`` in [0, 1] pixel space; returns (uint8 images, reached class)."""
    assert ctx.model is not None and ctx.normalizer is not None
    model, norm = ctx.model, ctx.normalizer
    was_training = model.training
    model.eval()
    out, reached = [], []
    try:
        for start in range(0, len(images), 256):
            x = to_float(images[start:start + 256]).to(ctx.device).requires_grad_(True)
            y = labels[start:start + 256].to(ctx.device)
            scale, shift = norm.tensors(ctx.device)
            loss = F.cross_entropy(model(x * 255.0 * scale - shift), y)
            (grad,) = torch.autograd.grad(loss, x)
            adv = to_uint8(x.detach() + eps * grad.sign())  # clamp to valid pixels, then 8-bit
            with torch.no_grad():
                pred = model(norm(adv)).argmax(1)
            out.append(adv.cpu())
            reached.append(pred.cpu())
    finally:
        model.train(was_training)
    return torch.cat(out), torch.cat(reached)


def build(ctx: BuildContext, size: int, seed: int, label_mode: str = "random_other", target_class: int = 0,
          eps: float = 0.08, source_class: int = -1, **_: object) -> TriggerSet:
    if ctx.model is None or ctx.normalizer is None:
        raise TriggerError("adversarial triggers are made against a trained model: none was given")
    rng = rng_for(seed, "adversarial")
    mode = AUTO_LABEL_MODE["adversarial"] if label_mode == "auto" else label_mode
    images, true = pick_from_pool(ctx, rng, size, None, "adversarial", source_class)
    adv, reached = fgsm(ctx, images, torch.from_numpy(true), eps)
    reached_np = reached.numpy()
    if mode == "reached":
        labels = reached_np.astype(np.int64)
    elif mode == "random_other":
        labels = random_other(rng, ctx.num_classes, [true, reached_np])
    else:
        labels = assign_labels(mode, rng, ctx.num_classes, size, target_class, true)
    flipped = float((reached_np != true).mean())
    return TriggerSet(adv, torch.from_numpy(labels), torch.from_numpy(true.astype(np.int64)), "adversarial", seed,
                      {"label_mode": mode, "eps": eps, "fooled_fraction": flipped},
                      control_images=images, control_kind="paired")
