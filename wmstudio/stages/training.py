"""The training loop every stage shares: optimiser, schedule, evaluation rows, events, cancel, NaN stop."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.config import TrainSection
from wmstudio.curvature.job import record_at_stage_end
from wmstudio.data.batches import BatchStream
from wmstudio.errors import Cancelled, StageFailed
from wmstudio.events import CheckpointSaved, Metrics, StageFinished, StageStarted, Step
from wmstudio.metrics import (
    DriftTracker,
    binomial_p_value,
    evaluate,
    evaluate_with_predictions,
    predict,
)
from wmstudio.metrics.collapse import collapse_reason, majority_share
from wmstudio.precision import training_autocast
from wmstudio.run_recorder import weights_location, weights_of
from wmstudio.session import Session
from wmstudio.status import Status
from wmstudio.triggers.control import control_rate


def make_optimizer(params: Iterable[nn.Parameter], t: TrainSection) -> torch.optim.Optimizer:
    params = list(params)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=t.momentum > 0)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)


ONECYCLE_WARMUP = 0.15  # share of the stage's steps spent warming up (onecycle)
ONECYCLE_START = 1.0 / 25.0  # the warm-up starts at lr / 25 (as torch's OneCycleLR's div_factor)


def make_scheduler(opt: torch.optim.Optimizer, t: TrainSection, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, t.epochs * steps_per_epoch)
    if t.scheduler == "cosine":
        def factor(step: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    elif t.scheduler == "onecycle":
        warm = max(1, int(ONECYCLE_WARMUP * total))

        def factor(step: int) -> float:
            if step < warm:
                return ONECYCLE_START + (1.0 - ONECYCLE_START) * step / warm
            return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm)))
    elif t.scheduler == "step":
        def factor(step: int) -> float:
            return t.gamma ** (step // (t.step_size * steps_per_epoch))
    else:
        def factor(step: int) -> float:
            return 1.0
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class StageHooks:
    """Where an embedding method or attack changes the shared loop. The defaults are plain training."""

    opt: torch.optim.Optimizer  # the stage's optimiser, set by train_stage before the first epoch
    label_smoothing: float = 0.0  # the stage's setting, set by train_stage

    def before_epoch(self, epoch: int) -> None:
        """At the start of each epoch (e.g. ROWBACK's freezing)."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y, label_smoothing=self.label_smoothing)

    def after_backward(self, model: nn.Module) -> None:
        """Between backward and the optimiser step (e.g. APP adds its trigger gradient)."""

    def after_step(self, step: int, opt: torch.optim.Optimizer) -> None:
        """After each optimiser step (e.g. the published mitigation's extra owner step)."""

    def after_epoch(self, epoch: int, opt: torch.optim.Optimizer) -> None:
        """At the end of each epoch, before its evaluation (e.g. the certified robust pass)."""

    def after_evaluation(self, row: dict[str, float], epoch: int, last: bool) -> None:
        """After each evaluation at an epoch's end and after the starting point's (epoch 0; ``last``: the
        stage's final one); may raise StageFailed with a reason (e.g. APP refusing a model it collapsed)."""


class PlateauRule:
    """Stop after ``patience`` evaluations without a trigger-accuracy gain of ``min_delta``."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.waited = -math.inf, 0

    def should_stop(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if value > self.best + self.min_delta:
            self.best, self.waited = value, 0
            return False
        self.waited += 1
        return self.waited >= self.patience


def evaluation_row(s: Session, drift: DriftTracker, epoch: float) -> tuple[dict[str, float], list[float], list[float]]:
    bs = s.cfg.run.eval_batch_size
    test_loss, test_acc, test_pred = evaluate_with_predictions(s.model, s.test.images, s.test.labels, s.normalizer,
                                                               bs, s.memory_format)
    share = majority_share(test_pred.cpu().numpy(), s.num_classes)
    row = {"global_step": s.global_step, "epoch": epoch, "test_loss": test_loss, "test_acc": test_acc,
           "majority_share": share,
           "collapsed": float(bool(collapse_reason(test_acc, share, s.num_classes)))}
    if s.trigger_images is not None and s.trigger_labels is not None:
        trig_loss, trig_acc = evaluate(s.model, s.trigger_images, s.trigger_labels, s.normalizer, bs, s.memory_format)
        n = len(s.trigger_labels)
        row.update(trigger_loss=trig_loss, trigger_acc=trig_acc,
                   p_value=binomial_p_value(int(round(trig_acc * n)), n, 1.0 / s.num_classes))
        if s.control_images is not None:
            control = control_rate(predict(s.model, s.control_images, s.normalizer, bs, s.memory_format),
                                   s.trigger_labels)
            row.update(control_acc=control, trigger_effect=trig_acc - control)
    else:
        row.update(trigger_loss=math.nan, trigger_acc=math.nan, p_value=math.nan)
    d = drift.measure(s.model)
    row.update(drift_l2=d.l2, drift_rel=d.rel, drift_cos=d.cos)
    return row, d.layer_l2, d.layer_cos


def _flat_weights(model: nn.Module) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([p.detach().flatten() for p in model.parameters()]).float().cpu().numpy()


def train_stage(s: Session, name: str, t: TrainSection, stream: BatchStream, drift_reference: str,
                params: list[nn.Parameter] | None = None, frozen_features: bool = False,
                plateau: PlateauRule | None = None, hooks: StageHooks | None = None) -> dict[str, float]:
    """Train ``s.model`` for ``t.epochs`` over ``stream``, logging and emitting as it goes."""
    model = s.model
    hooks = hooks or StageHooks()
    trainable = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = make_optimizer(trainable, t)
    steps_per_epoch = len(stream)
    sched = make_scheduler(opt, t, steps_per_epoch)
    drift = DriftTracker(s.reference_model(drift_reference))
    n_params = sum(p.numel() for p in model.parameters())
    record = s.cfg.run.record_trajectory and n_params <= s.cfg.run.trajectory_max_params
    total_steps = t.epochs * steps_per_epoch
    s.stage_order += 1
    reference = s.recorded_reference(drift_reference)
    s.emit(StageStarted(name, t.epochs, steps_per_epoch, s.global_step, tuple(drift.layer_names), reference,
                        s.stage_order, dataclasses.asdict(t)))
    hooks.opt = opt
    hooks.label_smoothing = t.label_smoothing
    precision = s.cfg.run.precision

    def commit(epoch: float) -> dict[str, float]:
        row, layer_l2, layer_cos = evaluation_row(s, drift, epoch)
        s.emit(Metrics(name, epoch, s.global_step, row, tuple(layer_l2), tuple(layer_cos),
                       _flat_weights(model) if record else None))
        return row

    last = commit(0.0)  # the starting point, before any step of this stage
    status = Status.FINISHED
    try:
        hooks.after_evaluation(last, 0, t.epochs == 0)
        for epoch in range(t.epochs):
            model.train()
            if frozen_features:
                model.eval()  # frozen feature extractor: BatchNorm statistics stay as they are
            hooks.before_epoch(epoch)
            for i, (x, y) in enumerate(stream):
                s.control.checkpoint()
                with training_autocast(s.device, precision):
                    loss = hooks.loss(model, x, y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise StageFailed(f"{name}: the loss became {value} at epoch {epoch + 1}, step {i + 1}; "
                                      f"training diverged, lower {name}.lr (now {t.lr})")
                lr = opt.param_groups[0]["lr"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                hooks.after_backward(model)
                opt.step()
                hooks.after_step(i + 1, opt)
                sched.step()
                s.global_step += 1
                step = epoch * steps_per_epoch + i + 1
                s.emit(Step(name, epoch + 1, step, s.global_step, value, lr, total_steps,
                            epoch + (i + 1) / steps_per_epoch))
                if t.eval_every_steps and step % t.eval_every_steps == 0 and i + 1 < steps_per_epoch:
                    last = commit(epoch + (i + 1) / steps_per_epoch)
            hooks.after_epoch(epoch, opt)
            last = commit(float(epoch + 1))
            hooks.after_evaluation(last, epoch + 1, epoch + 1 == t.epochs)
            if plateau is not None and plateau.should_stop(last["trigger_acc"]):
                status = Status.STOPPED_EARLY
                break
    except (Cancelled, StageFailed) as exc:
        kind = Status.CANCELLED if isinstance(exc, Cancelled) else Status.FAILED
        message = "" if kind == Status.CANCELLED else str(exc)
        s.emit(CheckpointSaved(name, weights_location(s.recorder.path, name), True, weights_of(model.state_dict())))
        s.emit(StageFinished(name, kind, last, message))
        raise
    s.emit(CheckpointSaved(name, weights_location(s.recorder.path, name), False, weights_of(model.state_dict())))
    message = f"trigger accuracy plateaued after {int(last['epoch'])} epochs" if status == Status.STOPPED_EARLY else ""
    s.emit(StageFinished(name, status, last, message))
    record_at_stage_end(s, name)  # run.curvature: after the stage is recorded as ended (a cancel here ends the run)
    return last
