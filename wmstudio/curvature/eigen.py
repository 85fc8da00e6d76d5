"""The top Hessian eigenvalues by Lanczos iteration on Hessian-vector products.

Lanczos builds an orthonormal basis of the Krylov space of a random start vector, one product per
step, with full reorthogonalisation (each new vector is orthogonalised twice against every basis
vector, in float64), so the Ritz values of the small tridiagonal matrix are those of an exact
Krylov projection. The iteration stops when each of the ``k`` largest Ritz values has a residual
``|beta_m * s_m|`` below ``tol`` times its magnitude (a bound on its distance to a true eigenvalue)
or after ``max_iter`` steps. "Top" means largest (algebraic): the sharpest directions of the loss.

``lanczos`` is also the building block of the spectral density (``trace.density``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from wmstudio.control import RunControl

HVP = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]  # (products done, products at most)


@dataclass
class Eigen:
    values: np.ndarray  # (k,), largest first
    residuals: np.ndarray  # (k,), the Lanczos bound on each value's error
    iterations: int
    converged: bool
    vectors: torch.Tensor | None = field(default=None, repr=False)  # (k, dim) Ritz vectors, if asked for


def tridiagonal(alpha: list[float], beta: list[float]) -> np.ndarray:
    m = len(alpha)
    t = np.diag(np.asarray(alpha, dtype=np.float64))
    if m > 1:
        off = np.asarray(beta[:m - 1], dtype=np.float64)
        t += np.diag(off, 1) + np.diag(off, -1)
    return t


def lanczos(hvp: HVP, start: torch.Tensor, steps: int, control: RunControl | None = None,
            stop: Callable[[list[float], list[float]], bool] | None = None,
            progress: Progress | None = None) -> tuple[list[float], list[float], torch.Tensor]:
    """``steps`` Lanczos steps from ``start`` (fewer if ``stop(alpha, beta)`` says so or the space is
    exhausted). Returns the tridiagonal's diagonal, off-diagonal (one longer: the last residual norm)
    and the basis (m, dim), float64."""
    dim = start.numel()
    steps = max(1, min(steps, dim))
    basis = torch.empty((steps, dim), dtype=torch.float64, device=start.device)
    q = start.to(torch.float64).reshape(-1)
    q = q / q.norm()
    alpha: list[float] = []
    beta: list[float] = []
    for j in range(steps):
        if control is not None:
            control.checkpoint()
        basis[j] = q
        w = hvp(q).to(torch.float64)
        a = float(w @ q)
        alpha.append(a)
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        b = float(w.norm())
        beta.append(b)
        if progress is not None:
            progress(j + 1, steps)
        if b <= 1e-10 * max(1.0, max(abs(x) for x in alpha)):
            break  # an invariant subspace: the Ritz values are exact eigenvalues
        if stop is not None and stop(alpha, beta):
            break
        q = w / b
    return alpha, beta, basis[:len(alpha)]


def top_eigenvalues(hvp: HVP, dim: int, k: int = 1, max_iter: int = 100, tol: float = 1e-5, seed: int = 0,
                    control: RunControl | None = None, progress: Progress | None = None,
                    device: torch.device | str = "cpu", vectors: bool = False) -> Eigen:
    """The ``k`` largest eigenvalues of the (dim x dim) symmetric operator ``hvp``."""
    k = max(1, min(k, dim))
    gen = torch.Generator().manual_seed(seed)
    start = torch.randn(dim, generator=gen, dtype=torch.float64).to(device)

    def ritz(alpha: list[float], beta: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta, s = np.linalg.eigh(tridiagonal(alpha, beta))
        order = np.argsort(theta)[::-1][:k]
        return theta[order], np.abs(beta[len(alpha) - 1] * s[-1, order]), s[:, order]

    def stop(alpha: list[float], beta: list[float]) -> bool:
        if len(alpha) < k + 1:
            return False
        theta, res, _ = ritz(alpha, beta)
        scale = np.maximum(np.abs(theta), 1e-12 * max(1.0, float(np.abs(theta).max())))
        return bool(np.all(res <= tol * scale))

    alpha, beta, basis = lanczos(hvp, start, max_iter, control, stop, progress)
    theta, res, s = ritz(alpha, beta)
    exhausted = len(alpha) == dim or beta[-1] <= 1e-10 * max(1.0, max(abs(x) for x in alpha))
    scale = np.maximum(np.abs(theta), 1e-12)
    converged = bool(exhausted or np.all(res <= tol * scale))
    vecs = None
    if vectors:
        vecs = (torch.from_numpy(s.T.copy()).to(basis.device) @ basis).to(torch.float32)
    if len(theta) < k:  # the Krylov space of the start vector is smaller than k
        pad = k - len(theta)
        theta, res = np.concatenate([theta, np.full(pad, np.nan)]), np.concatenate([res, np.full(pad, np.nan)])
    return Eigen(theta, res, len(alpha), converged, vecs)
