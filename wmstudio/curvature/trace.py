"""The Hessian's trace (Hutchinson) and its eigenvalue density (stochastic Lanczos quadrature).

Hutchinson: ``tr(H) = E[v^T H v]`` for Rademacher vectors ``v`` (entries +-1); the estimate is the
mean over ``probes`` vectors, with the standard error of that mean. ``exact_trace`` sums the
diagonal through the basis vectors instead (``dim`` products: small models only).

Density (Ubaru, Chen and Saad; as in PyHessian): for each of ``probes`` random unit vectors, ``steps``
Lanczos steps give Ritz values (nodes) and the squared first components of their eigenvectors
(weights, summing to 1 per probe); the density is the average over probes of Gaussians of width
``sigma`` at the nodes, weighted (``density_on_grid``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wmstudio.control import RunControl
from wmstudio.curvature.eigen import HVP, Progress, lanczos, tridiagonal


@dataclass
class TraceEstimate:
    value: float
    stderr: float  # of the mean over probes (nan with one probe, 0 for the exact trace)
    samples: np.ndarray  # v^T H v per probe (the diagonal for the exact trace)
    method: str  # "hutchinson" | "exact"


def hutchinson(hvp: HVP, dim: int, probes: int = 10, seed: int = 0, control: RunControl | None = None,
               progress: Progress | None = None, device: torch.device | str = "cpu") -> TraceEstimate:
    gen = torch.Generator().manual_seed(seed)
    samples = np.empty(probes)
    for i in range(probes):
        if control is not None:
            control.checkpoint()
        v = (torch.randint(0, 2, (dim,), generator=gen, dtype=torch.int8) * 2 - 1).to(device=device)
        hv = hvp(v.to(torch.float32))
        samples[i] = float(hv.to(torch.float64) @ v.to(hv.device, torch.float64))
        if progress is not None:
            progress(i + 1, probes)
    stderr = float(samples.std(ddof=1) / np.sqrt(probes)) if probes > 1 else float("nan")
    return TraceEstimate(float(samples.mean()), stderr, samples, "hutchinson")


def exact_trace(hvp: HVP, dim: int, control: RunControl | None = None, progress: Progress | None = None,
                device: torch.device | str = "cpu") -> TraceEstimate:
    diag = np.empty(dim)
    e = torch.zeros(dim, device=device)
    for i in range(dim):
        if control is not None:
            control.checkpoint()
        e[i] = 1.0
        diag[i] = float(hvp(e)[i])
        e[i] = 0.0
        if progress is not None:
            progress(i + 1, dim)
    return TraceEstimate(float(diag.sum()), 0.0, diag, "exact")


@dataclass
class Density:
    nodes: np.ndarray  # (probes, steps) Ritz values (nan-padded where a probe's Lanczos stopped early)
    weights: np.ndarray  # (probes, steps), each row sums to 1

    def on_grid(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        return density_on_grid(self.nodes, self.weights, grid, sigma)


def density(hvp: HVP, dim: int, probes: int = 1, steps: int = 80, seed: int = 0, control: RunControl | None = None,
            progress: Progress | None = None, device: torch.device | str = "cpu") -> Density:
    steps = max(1, min(steps, dim))
    gen = torch.Generator().manual_seed(seed)
    nodes = np.full((probes, steps), np.nan)
    weights = np.zeros((probes, steps))
    for i in range(probes):
        start = (torch.randint(0, 2, (dim,), generator=gen, dtype=torch.int8) * 2 - 1).to(device)

        def step(j: int, _total: int, i: int = i) -> None:
            if progress is not None:
                progress(i * steps + j, probes * steps)

        alpha, beta, _ = lanczos(hvp, start.to(torch.float64), steps, control, progress=step)
        theta, s = np.linalg.eigh(tridiagonal(alpha, beta))
        nodes[i, :len(theta)] = theta
        weights[i, :len(theta)] = s[0] ** 2
    return Density(nodes, weights)


def density_on_grid(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """The smoothed density at ``grid``: per probe, Gaussians of width ``sigma`` at the nodes, weighted;
    averaged over probes (it integrates to 1 over a grid wide enough)."""
    ok = np.isfinite(nodes)
    t = np.where(ok, nodes, 0.0)[..., None]
    g = np.exp(-((grid[None, None, :] - t) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    return (np.where(ok, weights, 0.0)[..., None] * g).sum(1).mean(0)
