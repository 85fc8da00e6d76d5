"""What the attacks share: the one-shot stage (evaluate, modify the weights, evaluate), the watermarked
model's accuracies before an attack, and the prunable layers of a model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from wmstudio.attacks import STAGE
from wmstudio.curvature.job import record_at_stage_end
from wmstudio.events import CheckpointSaved, Metrics, StageDetail, StageFinished, StageStarted
from wmstudio.metrics import DriftTracker, evaluate
from wmstudio.run_recorder import weights_location, weights_of
from wmstudio.session import Session
from wmstudio.stages.training import evaluation_row
from wmstudio.status import Status


def accuracies(s: Session) -> dict[str, float]:
    """Test and trigger accuracy of ``s.model`` now."""
    bs = s.cfg.run.eval_batch_size
    out = {"test_acc": evaluate(s.model, s.test.images, s.test.labels, s.normalizer, bs, s.memory_format)[1]}
    if s.trigger_images is not None and s.trigger_labels is not None:
        out["trigger_acc"] = evaluate(s.model, s.trigger_images, s.trigger_labels, s.normalizer, bs,
                                      s.memory_format)[1]
    return out


def record(s: Session, info: dict[str, Any]) -> None:
    """The attack's parameters and findings on the stage (``attack_json``)."""
    s.emit(StageDetail(STAGE, "attack_json", {"kind": s.cfg.attack.kind, "params": dataclasses.asdict(s.cfg.attack),
                                              **info}))


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers, whose weights pruning and quantisation act on."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def conv_with_norm(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d | None]]:
    """Each conv layer with the BatchNorm right after it in definition order (when it normalises its channels).

    Zeroing a channel's filter and that BatchNorm's scale and shift removes the channel's output
    exactly; without the BatchNorm, its shift would leave a constant behind."""
    mods = list(model.named_modules())
    out = []
    for i, (name, m) in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            nxt = mods[i + 1][1] if i + 1 < len(mods) else None
            bn = nxt if isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == m.out_channels else None
            out.append((name, m, bn))
    return out


@torch.no_grad()
def zero_channels(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, channels: torch.Tensor) -> None:
    conv.weight[channels] = 0
    if conv.bias is not None:
        conv.bias[channels] = 0
    if bn is not None and bn.affine:
        bn.weight[channels] = 0
        bn.bias[channels] = 0


def one_shot(s: Session, modify: Callable[[], dict[str, Any]]) -> dict[str, float]:
    """The stage of an attack that changes the weights once (pruning, quantisation, noise).

    Two evaluation rows: epoch 0 (the watermarked model) and epoch 1 (after ``modify``, which returns
    what it did for ``attack_json``); the attacked weights are saved like any stage's."""
    s.control.checkpoint()  # a cancel before the stage leaves no half-written stage
    drift = DriftTracker(s.reference_model("watermarked"))
    s.stage_order += 1
    reference = s.recorded_reference("watermarked")
    s.emit(StageStarted(STAGE, 1, 1, s.global_step, tuple(drift.layer_names), reference, s.stage_order,
                        dataclasses.asdict(s.cfg.attack)))

    def commit(epoch: float) -> dict[str, float]:
        row, l2, cos = evaluation_row(s, drift, epoch)
        s.emit(Metrics(STAGE, epoch, s.global_step, row, tuple(l2), tuple(cos)))
        return row

    before = commit(0.0)
    info = modify()
    s.global_step += 1
    last = commit(1.0)
    record(s, {"before": {k: before[k] for k in ("test_acc", "trigger_acc")}, **info})
    s.emit(CheckpointSaved(STAGE, weights_location(s.recorder.path, STAGE), False, weights_of(s.model.state_dict())))
    s.emit(StageFinished(STAGE, Status.FINISHED, last))
    record_at_stage_end(s, STAGE)
    return last
