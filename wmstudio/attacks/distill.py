"""Knowledge distillation: a fresh student of ``[extract]``'s architecture (the watermarked model's when empty)
learns the watermarked teacher's soft labels at temperature ``attack.temperature`` on the attacker's
images (``extract.data``), with ``[extract]``'s training recipe. The loss is Hinton et al.'s
``T^2 * KL(softmax(teacher/T) || softmax(student/T))``; the teacher is queried on each (augmented)
batch. (The extraction stage, ``[extract] enabled``, is the same attack with hard labels.)"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.attacks import STAGE
from wmstudio.attacks.stage import accuracies, record
from wmstudio.data.batches import BatchStream, Source
from wmstudio.session import Session
from wmstudio.stages.extract import build_copy, teacher_labels
from wmstudio.stages.training import StageHooks, train_stage


class SoftLabels(StageHooks):
    def __init__(self, teacher: nn.Module, temperature: float) -> None:
        self.teacher, self.t = teacher.eval(), temperature

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = F.softmax(self.teacher(x) / self.t, dim=1)
        return F.kl_div(F.log_softmax(model(x) / self.t, dim=1), target, reduction="batchmean") * self.t ** 2


@torch.no_grad()
def agreement(a: nn.Module, b: nn.Module, images: torch.Tensor, s: Session) -> float:
    """Fraction of ``images`` on which the two models predict the same class."""
    a.eval()
    b.eval()
    same = 0
    for start in range(0, len(images), s.cfg.run.eval_batch_size):
        x = s.normalizer(images[start:start + s.cfg.run.eval_batch_size]).contiguous(memory_format=s.memory_format)
        same += int((a(x).argmax(1) == b(x).argmax(1)).sum())
    return same / max(len(images), 1)


def run(s: Session) -> dict[str, float]:
    x, t = s.cfg.extract, s.cfg.attack.temperature
    before = accuracies(s)
    teacher = s.model
    pool = s.attacker if x.data == "attacker" else s.owner
    labels = teacher_labels(s, pool.images)  # the stream's labels; the loss uses the soft ones
    for p in teacher.parameters():
        p.requires_grad_(False)
    student, arch, options = build_copy(s)
    s.model = student
    s.snapshot("copy_initial")
    stream = BatchStream(Source(pool.images, labels, s.augment), x.batch_size, s.normalizer, s.generator,
                         memory_format=s.memory_format)
    last = train_stage(s, STAGE, x, stream, drift_reference="copy_initial", hooks=SoftLabels(teacher, t))
    record(s, {"before": before, "arch": arch, "options": options, "queries": len(pool), "temperature": t,
               "student_teacher_agreement_test": agreement(student, teacher, s.test.images, s),
               "student_teacher_agreement_trigger": agreement(student, teacher, s.trigger_images, s)
               if s.trigger_images is not None else None})
    s.snapshot("stolen")
    return last
