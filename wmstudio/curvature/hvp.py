"""Hessian-vector products of a model's mean cross-entropy loss over a fixed image set.

The loss is the clean loss (test images) or the trigger loss (trigger images) of the model in eval
mode (BatchNorm uses its running statistics, so the loss is a fixed function of the parameters).
The Hessian is taken with respect to all trainable parameters, or to those of one module
(``layer``: per-layer curvature); vectors are flat, in the order of the selected parameters.

Each product is a double backward pass. When the graph of the first gradient fits the memory
allowed (``keep_graph``), it is built once and kept, so every later product is one backward pass
through it instead of a forward pass, a backward pass and the double backward; otherwise the
first gradient is rebuilt batch by batch for every product.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.errors import ConfigError


def layer_parameters(model: nn.Module, layer: str = "") -> list[tuple[str, nn.Parameter]]:
    """The named trainable parameters of ``layer`` (a module name such as ``layer1.0.conv1``, or a
    parameter's own name); all of the model's for ``""``."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("model", "has no trainable parameters: its loss has no Hessian to measure")
    if not layer:
        return named
    picked = [(n, p) for n, p in named if n == layer or n.startswith(layer + ".")]
    if not picked:
        modules = sorted({n.rsplit(".", 1)[0] for n, _ in named if "." in n})
        raise ConfigError("--layer", f"no trainable parameters under {layer!r}; modules with parameters: "
                                     f"{', '.join(modules[:12])}{', ...' if len(modules) > 12 else ''}")
    return picked


@contextmanager
def only_grad(model: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Gradients flow only to ``params`` meanwhile (the rest are frozen, so no work is spent on them)."""
    keep = {id(p) for p in params}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


class LossHVP:
    """``hvp(v)``: the Hessian of the mean loss over ``inputs`` times ``v`` (flat, the parameters' dtype).

    ``inputs`` are normalised images on the model's device; ``batch_size`` bounds the images per pass.
    The model must stay in eval mode and unchanged while this object is used.
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, layer: str = "",
                 batch_size: int = 500, keep_graph: bool = False) -> None:
        if len(labels) == 0:
            raise ConfigError("images", "the loss needs at least one image (the set is empty)")
        self.model = model.eval()
        self.inputs, self.labels = inputs, labels
        self.named = layer_parameters(model, layer)
        self.params = [p for _, p in self.named]
        self.layer = layer
        self.dim = sum(p.numel() for p in self.params)
        self.batch_size = max(1, batch_size)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.count = 0  # products computed
        self._graph: list[torch.Tensor] | None = None  # flat first gradient per batch, graph kept
        self.keep_graph = keep_graph

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        n = len(self.labels)
        for s in range(0, n, self.batch_size):
            x, y = self.inputs[s:s + self.batch_size], self.labels[s:s + self.batch_size]
            yield x, y, len(y) / n

    def _flat_grad(self, x: torch.Tensor, y: torch.Tensor, weight: float, create_graph: bool) -> torch.Tensor:
        loss = F.cross_entropy(self.model(x), y) * weight
        grads = torch.autograd.grad(loss, self.params, create_graph=create_graph)
        return torch.cat([g.reshape(-1) for g in grads])

    def gradient(self) -> torch.Tensor:
        """The flat gradient of the mean loss (no graph kept)."""
        out = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        with only_grad(self.model, self.params):
            for x, y, w in self._batches():
                out += self._flat_grad(x, y, w, False)
        return out

    def loss(self) -> float:
        with torch.no_grad():
            return float(sum(F.cross_entropy(self.model(x), y) * w for x, y, w in self._batches()))

    def _hv(self, g: torch.Tensor, v: torch.Tensor, retain: bool) -> torch.Tensor:
        hv = torch.autograd.grad(g, self.params, grad_outputs=v, retain_graph=retain)
        return torch.cat([h.reshape(-1) for h in hv])

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        v = v.to(device=self.device, dtype=self.dtype)
        if v.numel() != self.dim:
            raise ValueError(f"vector has {v.numel()} values, the Hessian is {self.dim} x {self.dim}")
        self.count += 1
        with only_grad(self.model, self.params):
            if self.keep_graph:
                if self._graph is None:
                    self._graph = [self._flat_grad(x, y, w, True) for x, y, w in self._batches()]
                out = self._hv(self._graph[0], v, True)
                for g in self._graph[1:]:
                    out += self._hv(g, v, True)
                return out
            out = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
            for x, y, w in self._batches():
                out += self._hv(self._flat_grad(x, y, w, True), v, False)
            return out

    def release(self) -> None:
        """Drop a kept graph (its memory)."""
        self._graph = None


def graph_bytes(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, params: list[nn.Parameter]) -> int:
    """Bytes the autograd graph of one first gradient (built for a double backward) holds for ``inputs``:
    the tensors it saves, counted as they are packed (a measurement on the real model, any device)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with only_grad(model, params), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(inputs), labels)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.autograd.grad(flat, params, grad_outputs=torch.ones_like(flat))
    return total
