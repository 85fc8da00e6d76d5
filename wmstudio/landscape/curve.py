"""A connecting curve between two stage models: a quadratic Bezier curve with one trained bend.

Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs" (NeurIPS 2018):
``phi(t) = (1-t)^2 w0 + 2t(1-t) theta + t^2 w1`` for ``t`` in [0, 1], the ends ``w0`` and ``w1`` fixed
(two stages' models), the bend ``theta`` trained so that the loss is low along the whole curve. Each
step draws ``t ~ U(0, 1)``, evaluates the model at ``phi(t)`` on a batch of the owner's clean
training data (BatchNorm in training mode: the batch's statistics) and takes one SGD step on
``theta`` only. With ``theta`` at the ends' midpoint the curve is the straight segment, which is
where training starts and what the curve is compared with.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from wmstudio.control import RunControl
from wmstudio.data.batches import Normalizer
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.points import AlongT, Buffers


def coefficients(t: float) -> tuple[float, float, float]:
    """The Bernstein weights of the two ends and the bend at ``t``."""
    return (1 - t) ** 2, 2 * t * (1 - t), t * t


def bezier(w0: torch.Tensor, bend: torch.Tensor, w1: torch.Tensor, t: float,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """``phi(t)``; at t = 0 and t = 1 exactly ``w0`` and ``w1`` (the other weights are 0)."""
    a, b, c = coefficients(t)
    out = torch.mul(w0, a, out=out) if out is not None else w0 * a
    return out.add_(bend, alpha=b).add_(w1, alpha=c)


@dataclass
class CurvePoints(AlongT):
    """Points ``phi(t[k])`` of the curve, and ``line_params``: the straight segment at the same ``t``.
    BatchNorm statistics are not given (``stats`` is None): the evaluator re-estimates them at each point."""

    w0: torch.Tensor
    bend: torch.Tensor
    w1: torch.Tensor
    t: np.ndarray

    def params(self, k: int, out: torch.Tensor) -> torch.Tensor:
        return bezier(self.w0, self.bend, self.w1, float(self.t[k]), out)

    def line_params(self, k: int, out: torch.Tensor) -> torch.Tensor:
        t = float(self.t[k])
        return torch.mul(self.w0, 1 - t, out=out).add_(self.w1, alpha=t)

    def stats(self, k: int) -> Buffers | None:
        return None


def lr_factor(progress: float) -> float:
    """Garipov et al.'s schedule: the full rate for the first half, then linearly down to 1% at 90%."""
    if progress <= 0.5:
        return 1.0
    if progress <= 0.9:
        return 1.0 - 0.99 * (progress - 0.5) / 0.4
    return 0.01


@dataclass
class BendTraining:
    """The trained bend and how it was trained."""

    bend: torch.Tensor
    loss_history: list[float]  # mean training loss of each epoch
    steps: int
    seconds: float

    def attrs(self, epochs: int, lr: float, batch: int, images: int) -> dict[str, object]:
        return {"curve_epochs": epochs, "curve_lr": lr, "curve_batch": batch, "curve_steps": self.steps,
                "curve_train_images": images, "curve_loss_history": [float(v) for v in self.loss_history],
                "curve_train_seconds": round(self.seconds, 3),
                "curve_training": "SGD momentum 0.9 on the bend only, t ~ U(0,1) per step, owner's clean data, "
                                  "BatchNorm on the batch's statistics; lr constant for half the steps, then "
                                  "linearly down to 1% at 90%"}


class BendTrainer:
    """Trains the bend of the curve between ``w0`` and ``w1`` (flat, in ``ParamVector`` order) of ``model``."""

    def __init__(self, model: nn.Module, w0: torch.Tensor, w1: torch.Tensor, images: torch.Tensor,
                 labels: torch.Tensor, normalizer: Normalizer, lr: float, batch: int, seed: int) -> None:
        self.model, self.pv = model, ParamVector(model)
        self.w0, self.w1 = w0.detach().float(), w1.detach().float()
        self.images, self.labels, self.normalizer = images, labels, normalizer
        self.lr, self.batch = lr, batch
        self.gen = torch.Generator().manual_seed(int(seed))
        self.bend = ((self.w0 + self.w1) / 2).requires_grad_(True)
        self.opt = torch.optim.SGD([self.bend], lr=lr, momentum=0.9)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.labels) / self.batch))

    def step(self, idx: torch.Tensor, t: float, lr: float) -> float:
        """One SGD step on the bend with the batch ``idx`` at ``t``; returns the batch's loss."""
        phi = bezier(self.w0, self.bend, self.w1, t)
        params = {name: phi[s].view(shape) for name, s, shape in self.pv.slices()}
        x = self.normalizer(self.images[idx])
        loss = F.cross_entropy(functional_call(self.model, params, (x,)), self.labels[idx])
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def time_step(self) -> float:
        """Seconds of one training step, timed on one batch (the bend and the optimiser left unchanged)."""
        saved = self.bend.detach().clone()
        training = self.model.training
        buffers = {k: v.clone() for k, v in self.model.named_buffers()}
        self.model.train()
        try:
            idx = torch.arange(min(self.batch, len(self.labels)), device=self.labels.device)
            self.step(idx, 0.5, 0.0)  # a warm-up step (lr 0: the bend does not move)
            if self.images.device.type == "cuda":
                torch.cuda.synchronize(self.images.device)
            t0 = time.perf_counter()
            self.step(idx, 0.5, 0.0)
            if self.images.device.type == "cuda":
                torch.cuda.synchronize(self.images.device)
            return time.perf_counter() - t0
        finally:
            self.model.train(training)
            with torch.no_grad():
                self.bend.copy_(saved)
                named = dict(self.model.named_buffers())
                for k, v in buffers.items():
                    named[k].copy_(v)
            self.opt = torch.optim.SGD([self.bend], lr=self.lr, momentum=0.9)  # no momentum from the timing

    def train(self, epochs: int, control: RunControl | None = None,
              on_step: Callable[[int, int, int, float], None] | None = None) -> BendTraining:
        """``epochs`` passes over the images in a seeded order; ``on_step(epoch, done, total, mean loss)``
        after each step; ``control`` can pause or cancel (``Cancelled``) between steps."""
        total = epochs * self.steps_per_epoch
        history: list[float] = []
        training = self.model.training
        self.model.train()
        t0, done = time.perf_counter(), 0
        try:
            for epoch in range(epochs):
                order = torch.randperm(len(self.labels), generator=self.gen).to(self.labels.device)
                losses = []
                for s in range(0, len(order), self.batch):
                    if control is not None:
                        control.checkpoint()
                    t = float(torch.rand((), generator=self.gen))
                    losses.append(self.step(order[s:s + self.batch], t, self.lr * lr_factor(done / total)))
                    done += 1
                    if on_step is not None:
                        on_step(epoch + 1, done, total, float(np.mean(losses)))
                history.append(float(np.mean(losses)))
        finally:
            self.model.train(training)
        return BendTraining(self.bend.detach().clone(), history, done, time.perf_counter() - t0)
