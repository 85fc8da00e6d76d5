"""A stage's saved model as the landscape engine uses it: its parameters as one flat vector, and its
floating-point buffers (BatchNorm statistics). Shared by the kinds, the point sets and the driver."""

from __future__ import annotations

import torch

from wmstudio.landscape.context import LogContext
from wmstudio.landscape.flat import ParamVector, float_buffers


def stage_vector(ctx: LogContext, pv: ParamVector, stage: str) -> torch.Tensor:
    """A stage's parameters as one flat vector (``pv``'s layout), on the context's device."""
    return pv.from_state_dict(ctx.state(stage))


def stage_buffers(ctx: LogContext, stage: str) -> dict[str, torch.Tensor]:
    """A stage's floating-point buffers (BatchNorm statistics), as float."""
    names = set(float_buffers(ctx.model))
    return {k: v.float() for k, v in ctx.state(stage).items() if k in names}
