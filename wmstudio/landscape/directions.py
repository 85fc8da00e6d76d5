"""Directions in parameter space: filter-normalised random ones, a plane through three models, PCA,
and the running statistics' part of Li et al.'s "states" directions.

Filter normalisation follows Li et al., "Visualizing the Loss Landscape of Neural Nets" (NeurIPS
2018): each filter (the slice along the first axis of a weight of two or more dimensions) of a
random Gaussian direction is rescaled to the norm of the matching filter of the model's weights.
One-dimensional parameters (biases and BatchNorm scales/shifts) are either left out (``ignore``:
their direction is zero, Li et al.'s default) or scaled as one vector to the parameter's norm
(``include``).

``dir_type = "states"`` (Li et al.'s code: ``create_random_direction(dir_type='states')``) extends
the direction to the model's state, BatchNorm running statistics included. Their code gives every
one-dimensional state entry the entry itself as its direction (``d.copy_(w)``), so a step ``x``
along the first axis and ``y`` along the second scales each running mean and variance by
``1 + x + y``; ``state_directions`` follows that rule (their code zeroes these entries too when
biases and BatchNorm are ignored, which would make "states" equal to "weights": here the
statistics always move, and ``bias_bn`` governs the trainable one-dimensional parameters only).
Floating-point buffers of two or more dimensions get a seeded Gaussian direction normalised like a
weight of that shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmstudio.landscape.flat import ParamVector

NORMS = ("filter", "layer", "none")
BIAS_BN = ("ignore", "include")


def random_direction(pv: ParamVector, weights: torch.Tensor, seed: int, norm: str = "filter",
                     bias_bn: str = "ignore") -> torch.Tensor:
    """A seeded Gaussian direction, normalised against the flat ``weights`` (same layout as ``pv``)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if bias_bn not in BIAS_BN:
        raise ValueError(f"bias_bn must be one of {BIAS_BN}, got {bias_bn!r}")
    gen = torch.Generator().manual_seed(int(seed))
    d = torch.randn(pv.numel, generator=gen, dtype=torch.float32).to(weights.device)
    for _, s, shape in pv.slices():
        dv, wv = d[s], weights[s]
        if len(shape) <= 1:
            if bias_bn == "ignore":
                dv.zero_()
            elif norm != "none":
                dv.mul_(wv.norm() / dv.norm().clamp_min(1e-12))
            continue
        if norm == "filter":
            d2, w2 = dv.view(shape[0], -1), wv.view(shape[0], -1)
            d2.mul_(w2.norm(dim=1, keepdim=True) / d2.norm(dim=1, keepdim=True).clamp_min(1e-12))
        elif norm == "layer":
            dv.mul_(wv.norm() / dv.norm().clamp_min(1e-12))
    return d


@dataclass
class Plane:
    """An affine plane ``origin + x * u + y * v`` (``u``, ``v`` orthonormal except for random directions)."""

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def project(self, w: torch.Tensor) -> tuple[float, float, float]:
        """Coordinates of ``w`` in the plane and its distance from the plane."""
        diff = (w - self.origin).double()
        u, v = self.u.double(), self.v.double()
        gram = torch.tensor([[u @ u, u @ v], [u @ v, v @ v]], dtype=torch.float64)
        x, y = torch.linalg.solve(gram, torch.stack([diff @ u, diff @ v]).cpu()).tolist()
        residual = float((diff - x * u - y * v).norm())
        return x, y, residual

    def point(self, x: float, y: float, out: torch.Tensor | None = None) -> torch.Tensor:
        out = torch.add(self.origin, self.u, alpha=x, out=out) if out is not None else self.origin + x * self.u
        return out.add_(self.v, alpha=y)


def plane_through(w0: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> Plane:
    """The plane through three models, origin at ``w0``, ``u`` towards ``w1``, ``v`` by Gram-Schmidt."""
    a = (w1 - w0).double()
    b = (w2 - w0).double()
    na = a.norm()
    if na < 1e-12:
        raise ValueError("the first two models are identical: no plane through them")
    u = a / na
    b_perp = b - (b @ u) * u
    nb = b_perp.norm()
    if nb < 1e-5 * float(b.norm()):
        raise ValueError("the three models lie on one line: no plane through them (use kind=line)")
    v = b_perp / nb
    return Plane(w0.float(), u.float(), v.float())


def pca_plane(points: torch.Tensor, center: torch.Tensor) -> tuple[Plane, tuple[float, float]]:
    """The plane through ``center`` spanned by the first two principal directions of ``points - center``.

    ``points`` is (n, P) with n small; the eigenproblem is solved on the n x n Gram matrix, so P can
    be millions. Returns the plane and the fraction of variance each axis explains.
    """
    x = (points.double() - center.double())
    if x.shape[0] < 2:
        raise ValueError("PCA needs at least two recorded checkpoints besides the centre")
    gram = x @ x.T
    evals, evecs = torch.linalg.eigh(gram)
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order], evecs[:, order]
    if evals[1] <= 1e-12 * max(float(evals[0]), 1e-30):
        raise ValueError("the checkpoints span fewer than two directions: no PCA plane")
    axes = []
    for k in range(2):
        d = x.T @ evecs[:, k]
        axes.append(d / d.norm())
    total = float(evals.clamp_min(0).sum())
    explained = (float(evals[0]) / total, float(evals[1]) / total)
    return Plane(center.float(), axes[0].float(), axes[1].float()), explained


def state_directions(buffers: dict[str, torch.Tensor], seed: int, norm: str = "filter") -> dict[str, torch.Tensor]:
    """One axis' direction for a model's floating-point buffers (``buffers``: name -> the centre's values)."""
    gen = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, w in sorted(buffers.items()):
        if w.dim() <= 1:
            out[name] = w.detach().clone().float()  # Li et al.: a one-dimensional entry's direction is itself
            continue
        d = torch.randn(w.shape, generator=gen, dtype=torch.float32).to(w.device)
        if norm == "filter":
            d2, w2 = d.view(w.shape[0], -1), w.float().reshape(w.shape[0], -1)
            d2.mul_(w2.norm(dim=1, keepdim=True) / d2.norm(dim=1, keepdim=True).clamp_min(1e-12))
        elif norm == "layer":
            d.mul_(w.float().norm() / d.norm().clamp_min(1e-12))
        out[name] = d
    return out


def orthonormal_rows(vectors: torch.Tensor) -> torch.Tensor:
    """The rows of ``vectors`` (k, P) made orthonormal (Gram-Schmidt in float64, the order kept), each
    with its largest-magnitude entry positive so the sign does not depend on the solver."""
    q = torch.linalg.qr(vectors.double().T).Q.T.contiguous()
    for i in range(q.shape[0]):
        if q[i, int(q[i].abs().argmax())] < 0:
            q[i].neg_()
    return q.float()
