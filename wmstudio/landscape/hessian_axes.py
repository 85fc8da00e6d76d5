"""Landscape directions from the Hessian: the top eigenvectors of the clean or trigger loss at a model.

The kinds ``hessian`` (the plane of the top two eigenvectors) and ``hessian_line`` (the path along the
top one) take their axes from Lanczos on Hessian-vector products (``wmstudio.curvature``), run on the
centre model in eval mode (BatchNorm uses its running statistics, as every landscape point does). The
Ritz vectors are made orthonormal, each signed so that its largest entry is positive, and laid out
like ``ParamVector`` (the parameters' order in the model), so they combine with checkpoints and
trajectories directly. The estimate (a quick timing, as ``wmstudio curvature`` prints) and the result
are reported as curvature events, which the CLI and the app print like a curvature job's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from wmstudio.control import RunControl
from wmstudio.curvature.eigen import top_eigenvalues
from wmstudio.curvature.job import prepare
from wmstudio.curvature.spec import CurvatureSpec
from wmstudio.errors import Cancelled, RunLogError
from wmstudio.events import (
    CurvatureFinished,
    CurvatureProgress,
    CurvatureStarted,
    EventCallback,
    ignore,
)
from wmstudio.landscape.directions import orthonormal_rows
from wmstudio.landscape.flat import ParamVector
from wmstudio.status import Status

TOL = 1e-4  # Lanczos stops when each top value's residual bound is below this share of its size


@dataclass
class HessianAxes:
    vectors: torch.Tensor  # (k, P), orthonormal rows in ParamVector's layout
    values: list[float]  # the eigenvalues, largest first
    residuals: list[float]  # Lanczos' bound on each value's error
    iterations: int
    converged: bool
    estimate: str  # the job's estimate, in words
    seconds: float = 0.0

    def record(self, loss: str, images: int, stage: str) -> dict:
        """The attributes stored with the landscape."""
        return {"hessian_loss": loss, "hessian_stage": stage, "hessian_images": images,
                "hessian_eigenvalues": self.values, "hessian_residuals": self.residuals,
                "hessian_iterations": self.iterations, "hessian_converged": self.converged,
                "hessian_estimate": self.estimate, "hessian_seconds": round(self.seconds, 3)}


def top_eigenvectors(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, k: int, max_iter: int,
                     seed: int = 0, loss: str = "clean", stage: str = "", callback: EventCallback = ignore,
                     control: RunControl | None = None, batch_size: int = 500) -> HessianAxes:
    """The ``k`` top eigenvectors of the Hessian of the mean cross-entropy of ``model`` (eval mode, its
    current weights) over the normalised ``inputs``."""
    pv = ParamVector(model)
    spec = CurvatureSpec(loss=loss, top_k=k, probes=0, images=len(labels), max_iter=max(max_iter, k), tol=TOL,
                         seed=seed, batch_size=batch_size)
    was_training = model.training
    model.eval()
    key = f"{loss} (landscape directions)"
    t0 = time.perf_counter()
    try:
        hvp, est = prepare(model, inputs, labels, spec)
        callback(CurvatureStarted(stage, key, est.products, est.seconds, est.memory_bytes))
        try:
            eig = top_eigenvalues(hvp, hvp.dim, k, spec.max_iter, TOL, seed, control,
                                  lambda done, total: callback(CurvatureProgress(stage, key, "eigenvalues", done, total)),
                                  hvp.device, vectors=True)
        finally:
            hvp.release()
    except Exception as exc:
        callback(CurvatureFinished(stage, key, Status.CANCELLED if isinstance(exc, Cancelled) else Status.FAILED,
                                   time.perf_counter() - t0, message=str(exc)))
        raise
    finally:
        model.train(was_training)
    assert eig.vectors is not None
    if eig.vectors.shape[0] < k or not all(math.isfinite(v) for v in eig.values):
        raise RunLogError(f"the Hessian of the {loss} loss has fewer than {k} eigenvectors reachable by Lanczos "
                          f"from seed {seed} (found {eig.vectors.shape[0]}); try another seed")
    full = torch.zeros((k, pv.numel), dtype=torch.float32, device=eig.vectors.device)
    where = {name: s for name, s, _ in pv.slices()}
    offset = 0
    for name, p in hvp.named:  # the Hessian's parameters (the trainable ones) into the landscape's layout
        full[:, where[name]] = eig.vectors[:, offset:offset + p.numel()]
        offset += p.numel()
    seconds = time.perf_counter() - t0
    values = [float(v) for v in eig.values]
    callback(CurvatureFinished(stage, key, Status.FINISHED, seconds, {f"eigenvalue_{i + 1}": v for i, v in enumerate(values)}))
    return HessianAxes(orthonormal_rows(full), values, [float(r) for r in eig.residuals], eig.iterations,
                       eig.converged, est.line(), seconds)
