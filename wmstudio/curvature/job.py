"""A curvature job: its settings, its cost estimate, the measurement, and its record in the run log.

A job measures one loss (``clean``: the first ``images`` test images; ``trigger``: the trigger set) of
one model, over all parameters or one layer's: the top ``top_k`` Hessian eigenvalues (Lanczos), the
trace (Hutchinson, ``probes`` Rademacher vectors) and, when ``density_probes`` > 0, the eigenvalue
density (stochastic Lanczos quadrature). Before it starts, ``prepare`` times the model once (one
first-gradient graph on one batch, and for a kept graph the first two products) and estimates the
time and memory of the whole job; the estimate is emitted, printed by the CLI and stored with the
result.

Results go into the run log as the stage's JSON attribute ``curvature_json``: an object keyed by
``CurvatureSpec.key`` (``clean``, ``trigger``, ``clean@layer1.0.conv1``...), each value the result
of ``measure`` (docs/runlog.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wmstudio.control import RunControl
from wmstudio.curvature.eigen import top_eigenvalues
from wmstudio.curvature.hvp import LossHVP, graph_bytes, layer_parameters
from wmstudio.curvature.spec import ATTR, LOSSES, MAX_PRODUCTS, CurvatureSpec  # noqa: F401 - also re-exported
from wmstudio.curvature.trace import density, hutchinson
from wmstudio.errors import Cancelled, RunLogError
from wmstudio.events import (
    CurvatureFinished,
    CurvatureProgress,
    CurvatureStarted,
    EventCallback,
    ignore,
)
from wmstudio.memory import gib, memory_budget
from wmstudio.status import Status


@dataclass
class CostEstimate:
    """Time and memory of a job, from a quick timing of the model before it starts."""

    products: int  # Hessian-vector products at most
    product_seconds: float  # one product, as timed
    setup_seconds: float  # building the kept graph (0 without)
    seconds: float  # at most: setup + products x product_seconds
    memory_bytes: int  # model, images, graph, Lanczos basis
    graph_bytes: int  # of the first gradient over all images
    keep_graph: bool

    def line(self) -> str:
        from wmstudio.progress import fmt_time

        how = "graph kept" if self.keep_graph else "graph rebuilt per product"
        return (f"estimate: at most {self.products} Hessian-vector products x {self.product_seconds:.3g} s"
                f" = {fmt_time(self.seconds)}, memory about {gib(self.memory_bytes)} ({how})")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0] * 0.8)
    return memory_budget()


def products_at_most(spec: CurvatureSpec, dim: int) -> int:
    return min(spec.max_iter, dim) + spec.probes + spec.density_probes * min(spec.density_steps, dim)


def prepare(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, spec: CurvatureSpec,
            keep_graph: bool | None = None) -> tuple[LossHVP, CostEstimate]:
    """The product operator and the job's estimate, from one timed gradient graph on one batch (and, for a
    kept graph, the first two products). ``keep_graph`` None: kept when it fits the memory."""
    params = [p for _, p in layer_parameters(model, spec.layer)]
    device = params[0].device
    n = len(labels)
    bs = min(spec.batch_size, n)
    _sync(device)
    t0 = time.perf_counter()
    one = graph_bytes(model, inputs[:bs], labels[:bs], params)
    _sync(device)
    batch_seconds = time.perf_counter() - t0
    dim = sum(p.numel() for p in params)
    graph_total = int(one * n / bs)
    basis = 8 * dim * (min(spec.max_iter, dim) + (min(spec.density_steps, dim) if spec.density_probes else 0))
    fixed = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers(), inputs))
    if keep_graph is None:
        keep_graph = graph_total + basis + fixed <= _free_bytes(device)
    hvp = LossHVP(model, inputs, labels, spec.layer, bs, keep_graph)
    products = products_at_most(spec, dim)
    setup = 0.0
    per = batch_seconds * n / bs
    if keep_graph:
        v = torch.randn(dim, generator=torch.Generator().manual_seed(spec.seed), dtype=hvp.dtype).to(device)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            hvp(v)
            _sync(device)
            times.append(time.perf_counter() - t0)
        per, setup = times[1], max(0.0, times[0] - times[1])
        hvp.count = 0
    memory = fixed + basis + (graph_total if keep_graph else one)
    return hvp, CostEstimate(products, per, setup, setup + products * per, memory, graph_total, keep_graph)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def measure(hvp: LossHVP, spec: CurvatureSpec, control: RunControl | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Eigenvalues, trace and density as a JSON-ready dict (``progress(phase, done, total)``, products)."""
    total = products_at_most(spec, hvp.dim)

    def step(phase: str) -> Callable[[int, int], None]:
        def report(_j: int, _n: int) -> None:
            if progress is not None:
                progress(phase, min(total, hvp.count), total)

        return report

    t0 = time.perf_counter()
    out: dict[str, Any] = {"loss": spec.loss, "layer": spec.layer, "parameters": hvp.dim, "images": len(hvp.labels),
                           "loss_value": hvp.loss(), "settings": asdict(spec)}
    eig = top_eigenvalues(hvp, hvp.dim, spec.top_k, spec.max_iter, spec.tol, spec.seed, control, step("eigenvalues"),
                          hvp.device)
    out.update(eigenvalues=[_finite(v) for v in eig.values], eigen_residuals=[_finite(v) for v in eig.residuals],
               lanczos_iterations=eig.iterations, converged=eig.converged)
    if spec.probes:
        tr = hutchinson(hvp, hvp.dim, spec.probes, spec.seed + 1, control, step("trace"), hvp.device)
        out.update(trace=tr.value, trace_stderr=_finite(tr.stderr), trace_probes=spec.probes)
    if spec.density_probes:
        d = density(hvp, hvp.dim, spec.density_probes, spec.density_steps, spec.seed + 2, control, step("density"),
                    hvp.device)
        out.update(density_nodes=[[_finite(v) for v in row] for row in d.nodes],
                   density_weights=[[float(v) for v in row] for row in d.weights])
    out.update(products=hvp.count, seconds=time.perf_counter() - t0)
    return out


def run(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, spec: CurvatureSpec, stage: str = "",
        callback: EventCallback = ignore, control: RunControl | None = None,
        on_estimate: Callable[[CostEstimate], None] | None = None) -> dict[str, Any]:
    """One job on a model (put in eval mode meanwhile, its training flag restored): the estimate first
    (``on_estimate``, the ``CurvatureStarted`` event), then the measurement; the result holds both."""
    spec.check()
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    try:
        hvp, est = prepare(model, inputs, labels, spec)
        if on_estimate is not None:
            on_estimate(est)
        callback(CurvatureStarted(stage, spec.key, est.products, est.seconds, est.memory_bytes))
        try:
            result = measure(hvp, spec, control,
                             lambda phase, done, total: callback(CurvatureProgress(stage, spec.key, phase, done, total)))
        finally:
            hvp.release()
    except Cancelled:
        callback(CurvatureFinished(stage, spec.key, Status.CANCELLED, time.perf_counter() - t0))
        raise
    except Exception as exc:
        callback(CurvatureFinished(stage, spec.key, Status.FAILED, time.perf_counter() - t0, message=str(exc)))
        raise
    finally:
        model.train(was_training)
    result["estimate"] = asdict(est)
    from wmstudio.runlog import now

    result["created"] = now()
    values = {"top_eigenvalue": result["eigenvalues"][0] or math.nan, "trace": result.get("trace", math.nan)}
    callback(CurvatureFinished(stage, spec.key, Status.FINISHED, time.perf_counter() - t0, values, result=result))
    return result


def loss_inputs(images: torch.Tensor, labels: torch.Tensor, normalizer: Any, limit: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised float images and their labels (the first ``limit``; 0: all)."""
    n = len(labels) if limit == 0 else min(limit, len(labels))
    return normalizer(images[:n]), labels[:n]


# ---------------------------------------------------------------- the run log

def store(writer: Any, stage: str, key: str, result: dict[str, Any]) -> None:
    """Add (or replace) one result in the stage's ``curvature_json`` (``writer``: a RunLogWriter)."""
    from wmstudio.runlog_reader import RunLogReader

    held = RunLogReader(writer.path).stage_json(stage, ATTR) or {}
    if not isinstance(held, dict):
        raise RunLogError(f"{writer.path}: /stages/{stage} {ATTR}: expected a JSON object")
    held[key] = result
    writer.set_stage_json(stage, ATTR, held)


def read(path: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stored result: stage -> key -> result (stages without one left out)."""
    from wmstudio.runlog_reader import RunLogReader

    reader = RunLogReader(path)
    out = {}
    for stage in reader.stage_names():
        held = reader.stage_json(stage, ATTR)
        if held is not None:
            if not isinstance(held, dict):
                raise RunLogError(f"{path}: /stages/{stage} {ATTR}: expected a JSON object")
            out[stage] = held
    return out


def record_at_stage_end(s: Any, stage: str) -> None:
    """``run.curvature = "stage_ends"``: the clean and (with a trigger set) trigger curvature of the stage's
    final model, stored in the log (``s``: the run's Session)."""
    r = s.cfg.run
    if r.curvature != "stage_ends":
        return
    losses = [("clean", s.test.images, s.test.labels, r.curvature_images)]
    if s.trigger_images is not None and len(s.trigger_images):
        losses.append(("trigger", s.trigger_images, s.trigger_labels, 0))
    for loss, images, labels, limit in losses:
        spec = CurvatureSpec(loss=loss, top_k=r.curvature_top_k, probes=r.curvature_probes, images=limit,
                             batch_size=r.eval_batch_size, seed=r.seed)
        x, y = loss_inputs(images, labels, s.normalizer, limit)
        run(s.model, x, y, spec, stage, s.emit, s.control)  # its CurvatureFinished carries the result to the log


def _num(value: Any, fmt: str = ".4g") -> str:
    """A stored number in words ("nan" for null, "?" for anything else: the log is someone's data)."""
    if value is None:
        return "nan"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return "?"


def summary(result: dict[str, Any]) -> str:
    """One line: the top eigenvalues and the trace."""
    values = result.get("eigenvalues")
    eig = ", ".join(_num(v) for v in values) if isinstance(values, list) else "?"
    text = f"top eigenvalues [{eig}]"
    if "trace" in result:
        se = result.get("trace_stderr")
        text += f", trace {_num(result['trace'])}" + (f" +- {_num(se, '.2g')}" if se is not None else "")
    if result.get("converged") is False:
        text += f" (Lanczos not converged in {_num(result.get('lanczos_iterations'), 'd')} steps)"
    return text + f"; {_num(result.get('products'), 'd')} products in {_num(result.get('seconds'), '.1f')} s"


def density_array(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    if "density_nodes" not in result:
        return None
    nodes = np.array([[np.nan if v is None else v for v in row] for row in result["density_nodes"]], dtype=float)
    return nodes, np.asarray(result["density_weights"], dtype=float)
