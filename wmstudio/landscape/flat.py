"""A model's parameters as one flat vector, in the order of ``model.parameters()``.

The order and layout match the trajectories the stages record (each parameter flattened in its
logical, row-major order, whatever its memory format), so stored directions, checkpoints and
trajectories can be combined directly.
"""

from __future__ import annotations

import torch
from torch import nn


class ParamVector:
    """Reads and writes a model's trainable parameters as one flat float32 vector."""

    def __init__(self, model: nn.Module) -> None:
        self.names = [n for n, _ in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        self.shapes = [tuple(p.shape) for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.offsets = [0]
        for n in self.sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.device = self.params[0].device if self.params else torch.device("cpu")

    @property
    def numel(self) -> int:
        return self.offsets[-1]

    def slices(self) -> list[tuple[str, slice, tuple[int, ...]]]:
        return [(n, slice(self.offsets[i], self.offsets[i + 1]), self.shapes[i]) for i, n in enumerate(self.names)]

    @torch.no_grad()
    def get(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).float()

    @torch.no_grad()
    def set_(self, flat: torch.Tensor) -> None:
        """Copy ``flat`` into the parameters in place (no reallocation; memory formats are kept)."""
        if flat.numel() != self.numel:
            raise ValueError(f"flat vector has {flat.numel()} values, the model has {self.numel} parameters")
        views = [flat[s].view(shape) for _, s, shape in self.slices()]
        torch._foreach_copy_(self.params, views)

    def from_state_dict(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """The flat parameter vector of a state_dict (buffers ignored)."""
        missing = [n for n in self.names if n not in state]
        if missing:
            raise KeyError(f"state_dict lacks parameters {missing[:5]}")
        return torch.cat([state[n].detach().reshape(-1).float().to(self.device) for n in self.names])


def float_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Floating-point buffers (BatchNorm running statistics), which a landscape does not perturb."""
    return {n: b for n, b in model.named_buffers() if b.is_floating_point()}


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
