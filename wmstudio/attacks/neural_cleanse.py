"""Neural Cleanse-style unlearning (Wang et al., S&P 2019).

1. For every class c, reverse-engineer the smallest trigger that sends clean images to c: a mask m
   (H x W, in [0, 1]) and a pattern p (C x H x W, in [0, 1]) stamped as ``(1 - m) * x + m * p``,
   optimised with Adam to minimise ``cross_entropy(model(stamped), c) + nc_lambda * mean(m)`` (the mask's
   L1 norm per pixel, so one weight suits every image size) on
   ``attack.nc_images`` clean attacker images.
2. Flag the anomalous class: the anomaly index of each class is ``(median - |m_c|_1) / (1.4826 * MAD)``
   over the classes' mask norms; the class with the largest index (the smallest trigger) is flagged,
   and called detected when its index exceeds 2 (the paper's threshold).
3. Unlearn: fine-tune on the attacker's data with ``[finetune]``'s recipe, with the flagged class's
   reversed trigger stamped on ``attack.nc_stamp_fraction`` of the images, which keep their true labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.attacks import STAGE
from wmstudio.attacks.stage import accuracies, record
from wmstudio.data.batches import BatchStream, Normalizer, Source
from wmstudio.events import Note, Phase
from wmstudio.session import Session
from wmstudio.stages.finetune import attacker_data
from wmstudio.stages.training import train_stage

BATCH = 128
PROGRESS_EVERY = 10  # optimiser steps between two progress events while reversing triggers


@dataclass
class Reversed:
    target: int
    mask: torch.Tensor  # (1, 1, H, W) in [0, 1]
    pattern: torch.Tensor  # (1, C, H, W) in [0, 1]
    success: float  # fraction of the clean images the stamp sends to ``target``

    @property
    def l1(self) -> float:
        return float(self.mask.sum())

    def stamp(self, pixels: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels with the trigger stamped on."""
        return (1 - self.mask) * pixels + self.mask * self.pattern


def reverse_trigger(model: nn.Module, images: torch.Tensor, normalizer: Normalizer, target: int, steps: int,
                    lr: float, weight: float, generator: torch.Generator,
                    memory_format: torch.memory_format = torch.contiguous_format,
                    progress: Callable[[int], None] | None = None) -> Reversed:
    """The smallest mask + pattern that sends ``images`` (uint8) to class ``target`` (the model is not changed);
    ``progress(steps done)`` is called every ``PROGRESS_EVERY`` steps."""
    pixels = images.float() / 255.0
    _, c, h, w = pixels.shape
    mean = torch.tensor(normalizer.mean, device=pixels.device).view(1, -1, 1, 1)
    std = torch.tensor(normalizer.std, device=pixels.device).view(1, -1, 1, 1)
    mask_logit = torch.zeros(1, 1, h, w, device=pixels.device, requires_grad=True)
    pattern_logit = torch.zeros(1, c, h, w, device=pixels.device, requires_grad=True)
    opt = torch.optim.Adam([mask_logit, pattern_logit], lr=lr)
    labels = torch.full((min(BATCH, len(pixels)),), target, device=pixels.device, dtype=torch.long)
    for i in range(steps):
        if progress is not None and i and i % PROGRESS_EVERY == 0:
            progress(i)
        idx = torch.randint(len(pixels), (len(labels),), generator=generator, device=generator.device).to(pixels.device)
        m, p = torch.sigmoid(mask_logit), torch.sigmoid(pattern_logit)
        x = ((1 - m) * pixels[idx] + m * p - mean) / std
        loss = F.cross_entropy(model(x.contiguous(memory_format=memory_format)), labels) + weight * m.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        rev = Reversed(target, torch.sigmoid(mask_logit).detach(), torch.sigmoid(pattern_logit).detach(), 0.0)
        hits = 0
        for start in range(0, len(pixels), 500):
            x = (rev.stamp(pixels[start:start + 500]) - mean) / std
            hits += int((model(x.contiguous(memory_format=memory_format)).argmax(1) == target).sum())
        rev.success = hits / len(pixels)
    return rev


def anomaly_indices(norms: list[float]) -> list[float]:
    """Neural Cleanse's anomaly index per class: how far below the median its mask norm lies, in robust stds."""
    t = torch.tensor(norms, dtype=torch.float64)
    med = t.median()
    mad = (t - med).abs().median() * 1.4826
    return ((med - t) / mad.clamp_min(1e-12)).tolist()


def reverse_all(s: Session, images: torch.Tensor) -> list[Reversed]:
    a = s.cfg.attack
    model = s.model
    was = model.training
    model.eval()
    grads = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator(device=s.device)
    gen.manual_seed(s.cfg.run.seed + 707)
    try:
        out = []
        total = s.num_classes * a.nc_steps
        what = "reversing each class's trigger"
        for c in range(s.num_classes):
            s.control.checkpoint()
            s.emit(Phase(STAGE, what, c * a.nc_steps, total))

            def progress(i: int, c: int = c) -> None:
                s.control.checkpoint()  # Pause and Cancel act within a class too
                s.emit(Phase(STAGE, what, c * a.nc_steps + i, total))

            out.append(reverse_trigger(model, images, s.normalizer, c, a.nc_steps, a.nc_lr, a.nc_lambda, gen,
                                       s.memory_format, progress))
        s.emit(Phase(STAGE, what, total, total))
        return out
    finally:
        for p, g in zip(model.parameters(), grads, strict=True):
            p.requires_grad_(g)
        model.train(was)


DETECTION_THRESHOLD = 2.0  # the paper's anomaly index above which the flagged class counts as detected


def flagged_words(info: dict) -> str:
    """Which class Neural Cleanse flagged and whether it counts as detected, from its ``attack_json``."""
    k = int(info["flagged_class"])
    index = float(info["anomaly_index"][k])
    success = info.get("reversed_success") or []
    verdict = (f"> {DETECTION_THRESHOLD:g}: detected" if index > DETECTION_THRESHOLD
               else f"<= {DETECTION_THRESHOLD:g}: not detected, only the class with the smallest reversed trigger")
    sends = f"; its reversed trigger sends {float(success[k]):.0%} of clean images to it" if k < len(success) else ""
    return f"Neural Cleanse flagged class {k} (anomaly index {index:.2f} {verdict}{sends}); unlearning its trigger"


def run(s: Session) -> dict[str, float]:
    a, f = s.cfg.attack, s.cfg.finetune
    before = accuracies(s)
    data = attacker_data(s)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(s.cfg.run.seed + 709)
    order = torch.randperm(len(data), generator=gen).to(data.images.device)
    triggers = reverse_all(s, data.images[order[:a.nc_images]])
    norms = [r.l1 for r in triggers]
    index = anomaly_indices(norms)
    flagged = max(range(len(index)), key=index.__getitem__)
    rev = triggers[flagged]
    s.emit(Note(STAGE, flagged_words({"flagged_class": flagged, "anomaly_index": index,
                                      "reversed_success": [r.success for r in triggers]})))
    images = data.images.clone()
    n = int(round(a.nc_stamp_fraction * len(images)))
    chosen = order[:n]
    with torch.no_grad():
        images[chosen] = (rev.stamp(images[chosen].float() / 255.0) * 255.0).round().clamp(0, 255).to(images.dtype)
    stream = BatchStream(Source(images, data.labels, s.augment), f.batch_size, s.normalizer, s.generator,
                         memory_format=s.memory_format)
    last = train_stage(s, STAGE, f, stream, drift_reference="watermarked")
    record(s, {"before": before, "mask_l1": norms, "anomaly_index": index, "flagged_class": flagged,
               "detected": index[flagged] > DETECTION_THRESHOLD, "reversed_success": [r.success for r in triggers],
               "stamped_images": n, "unlearning_images": len(images),
               "mask": rev.mask.squeeze().cpu().tolist(), "pattern": rev.pattern.squeeze(0).cpu().tolist()})
    return last
