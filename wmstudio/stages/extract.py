"""Stage 2, alternative attack: model extraction.

The attacker queries the watermarked model on their own images and trains a fresh copy (the same
or another architecture) on the labels it predicts. The copy's trigger accuracy shows whether the
watermark travelled with the stolen function; the restore stage then trains the copy on the
owner's data, as it would a fine-tuned model.
"""

from __future__ import annotations

import dataclasses

import torch

from wmstudio.data.batches import BatchStream, Source
from wmstudio.events import StageDetail
from wmstudio.models import build_model
from wmstudio.models.registry import output_count
from wmstudio.session import Session
from wmstudio.stages.training import train_stage


@torch.no_grad()
def teacher_labels(s: Session, images: torch.Tensor) -> torch.Tensor:
    model = s.model
    model.eval()
    scale, shift = s.normalizer.tensors(images.device)
    out = []
    for start in range(0, len(images), s.cfg.run.eval_batch_size):
        x = images[start:start + s.cfg.run.eval_batch_size].float().mul_(scale).sub_(shift)
        out.append(model(x.contiguous(memory_format=s.memory_format)).argmax(1))
    return torch.cat(out)


def build_copy(s: Session) -> tuple[torch.nn.Module, str, dict]:
    """A fresh, untrained model of ``[extract]``'s architecture (the watermarked model's when empty), on the
    device: the copy an extraction or distillation attack trains. Returns (model, arch, options)."""
    x = s.cfg.extract
    c, h, _ = s.data.shape
    arch = x.arch or s.cfg.model.arch
    options = dict(x.options) if x.arch else {k: v for k, v in s.cfg.model.options.items() if k != "dual_bn"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.cfg.run.seed + 303)
        copy = build_model(arch, c, output_count(s.cfg.model.num_classes, s.num_classes), h, options,
                           "" if x.arch else s.cfg.model.file, "" if x.arch else s.cfg.model.factory)
    copy.to(s.device).to(memory_format=s.memory_format)
    return copy, arch, options


def run_extract(s: Session) -> dict[str, float]:
    x = s.cfg.extract
    pool = s.attacker if x.data == "attacker" else s.owner
    labels = teacher_labels(s, pool.images)
    agreement = float((labels == pool.labels).float().mean())
    copy, arch, options = build_copy(s)
    s.model = copy
    s.snapshot("copy_initial")
    stream = BatchStream(Source(pool.images, labels, s.augment), x.batch_size, s.normalizer, s.generator,
                         memory_format=s.memory_format)
    t = dataclasses.replace(x)
    last = train_stage(s, "extract", t, stream, drift_reference="copy_initial")
    s.emit(StageDetail("extract", "extraction_json", {"arch": arch, "options": options, "queries": len(pool),
                                                      "teacher_agreement_with_true_labels": agreement}))
    s.snapshot("stolen")
    return last
