"""Separate BatchNorm statistics for clean and trigger samples (the model variant APP needs).

Every ``BatchNorm2d`` becomes a pair; :func:`bn_route` picks which one a forward pass uses.
Evaluation and every other stage use the clean one, so the trained model is an ordinary
classifier whose clean statistics never saw a trigger image.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class DualBatchNorm2d(nn.Module):
    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.bn_clean = bn
        self.bn_trigger = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        self.bn_trigger.load_state_dict(bn.state_dict())
        self.route = "clean"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn_trigger(x) if self.route == "trigger" else self.bn_clean(x)


def to_dual_bn(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in place; returns the model."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, DualBatchNorm2d(child))
        else:
            to_dual_bn(child)
    return model


def has_dual_bn(model: nn.Module) -> bool:
    return any(isinstance(m, DualBatchNorm2d) for m in model.modules())


@contextmanager
def bn_route(model: nn.Module, route: str) -> Iterator[None]:
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    for m in duals:
        m.route = route
    try:
        yield
    finally:
        for m in duals:
            m.route = "clean"
