"""Computing a landscape into a run log: set-up, coarse-to-fine evaluation, resume, worker fan-out."""

from __future__ import annotations

import copy
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmstudio.control import RunControl
from wmstudio.device import use_threads
from wmstudio.errors import Cancelled, ConfigError, RunLogError
from wmstudio.events import (
    EventCallback,
    LandscapeEstimate,
    LandscapeFinished,
    LandscapePoints,
    LandscapeStarted,
    ignore,
)
from wmstudio.landscape import store
from wmstudio.landscape.context import LogContext, load_context
from wmstudio.landscape.directions import Plane
from wmstudio.landscape.evaluator import PointEvaluator
from wmstudio.landscape.flat import has_batchnorm
from wmstudio.landscape.grid import refinement_levels
from wmstudio.landscape.kinds.base import kind_of
from wmstudio.landscape.point_work import (
    evaluate_points,
    likely_precision,
    make_evaluator,
    points_from_store,
    stored_precision,
)
from wmstudio.landscape.spec import LINE_METRICS, METRICS, LandscapeSpec
from wmstudio.log_lock import WriterLock
from wmstudio.progress import estimate_text
from wmstudio.status import Status

COMMIT_SECONDS = 1.0


# ---------------------------------------------------------------- set-up

def _project_trajectories(ctx: LogContext, plane: Plane) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for rec in ctx.reader.stages():
        rows = ctx.reader.trajectory(rec.name)
        if len(rows) == 0:
            continue
        xy, res = [], []
        for r in rows:
            x, y, d = plane.project(torch.from_numpy(r).to(plane.origin.device))
            xy.append((x, y))
            res.append(d)
        steps = rec.eval.get("global_step", np.arange(len(rows)))[:len(rows)]
        out[rec.name] = {"xy": np.asarray(xy), "residual": np.asarray(res), "global_step": np.asarray(steps)}
    return out


def _create(ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback = ignore,
            control: RunControl | None = None) -> None:
    """Build the directions and the grid (the kind's ``create``: the Hessian kinds first find their
    eigenvectors, a curve trains its bend; ``callback`` hears the estimate and ``control`` can cancel), and
    write the empty landscape group, with the stages' trajectories projected on a 2D kind's plane."""
    attrs: dict[str, Any] = {"bn_stats": spec.bn if has_batchnorm(ctx.model) else "none (no BatchNorm)",
                             "data": spec.data, "models_json": spec.models}
    made = kind_of(spec.kind).create(ctx, spec, log_path, callback, control)
    attrs.update(made.attrs)
    store.create(log_path, spec, made.shape, made.arrays, attrs)
    if made.plane is not None:
        store.write_trajectories(log_path, spec.name, _project_trajectories(ctx, made.plane))


def _choose_precision(ctx: LogContext, spec: LandscapeSpec, log_path: Path, ls: store.Landscape,
                      ev: PointEvaluator | None) -> tuple[str, PointEvaluator | None]:
    """The landscape's precision: the recorded one when resuming, otherwise ``spec.precision`` (auto: the
    check); recorded in the landscape's attributes. Returns it and the evaluator built for the check."""
    from wmstudio.landscape.precision_check import PrecisionChoice, choose_precision
    from wmstudio.precision import bf16_fast

    if "eval_precision" in ls.attrs:
        return stored_precision(ls), ev  # a resume continues in the precision its points were computed in
    if ls.done.any():
        choice = PrecisionChoice("fp32", "resumed a landscape whose points were computed before the precision "
                                         "setting existed (fp32)")
    else:
        check = spec.precision == "auto" and bf16_fast(ctx.device)[0]
        if check and ev is None:
            ev = make_evaluator(ctx, spec, likely="bf16")  # workers: the check runs here, in the driver, first
        points = points_from_store(ctx, log_path, spec.name) if check else None
        choice = choose_precision(spec.precision, ctx.device, ev, points, spec.seed)
    store.set_attrs(log_path, spec.name, choice.attrs())
    return choice.precision, ev


# ---------------------------------------------------------------- evaluation

def estimate_points(ev: PointEvaluator, points: int) -> tuple[int, float, float, int]:
    """(points, seconds a point, seconds in all, bytes): one timed forward pass of the model over the
    evaluation images stands for a point (plus BatchNorm re-estimation, where asked for, counted as
    one more pass over its images); memory: the images, the model and a copy of its parameters."""
    t0 = time.perf_counter()
    ev.forward_only()
    if ev.inputs.device.type == "cuda":
        torch.cuda.synchronize(ev.inputs.device)
    per = time.perf_counter() - t0
    if ev.bn_inputs:
        per *= 1 + sum(len(x) for x in ev.bn_inputs) / max(1, len(ev.labels))
    model = sum(p.numel() * p.element_size() for p in ev.model.parameters())
    memory = ev.inputs.numel() * ev.inputs.element_size() + 2 * model + 2 * ev.pv.numel * 4
    return points, per, points * per, memory


_WORKER: dict[str, Any] = {}


def _worker_init(log_path: str, name: str, device: str, threads: int, trust_code: bool = False) -> None:
    torch.set_num_threads(threads)
    ctx = load_context(log_path, device, trust_code)
    ls = store.read(log_path, name)
    _WORKER.update(ev=make_evaluator(ctx, ls.spec, stored_precision(ls)),
                   points=points_from_store(ctx, Path(log_path), name))


def _pool_worker_init(log_path: str, name: str, device: str, threads: int, trust_code: bool = False) -> None:
    """A pool worker leaves Ctrl-C to the driver (the terminal sends it to the whole process group):
    the driver cancels, commits what it has and shuts the pool down."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_init(log_path, name, device, threads, trust_code)


def _worker_eval(indices: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return indices, evaluate_points(_WORKER["ev"], _WORKER["points"], indices)


def _levels(shape: tuple[int, ...], coarse: int) -> list[np.ndarray]:
    return refinement_levels(*shape, coarse) if len(shape) == 2 else refinement_levels(1, shape[0], coarse)


def compute_landscape(log_path: str | Path, spec: LandscapeSpec, callback: EventCallback = ignore,
                      control: RunControl | None = None, device: str = "auto", workers: int = 1,
                      overwrite: bool = False, threads: int = 0, ray_address: Any = None,
                      trust_code: bool = False) -> store.Landscape:
    """Compute (or resume) one landscape into the run log; returns it as stored.

    An unfinished landscape of the same name and settings is resumed; a finished one is kept unless
    ``overwrite``; one with other settings needs ``overwrite`` or another name.

    ``workers > 1`` fans the points out over local processes; ``ray_address`` ("" for a local Ray
    instance, a cluster address, or a ``distributed.RayTarget``) over Ray actors, one per worker, on
    as many machines as the cluster has (they receive the model, directions and evaluation tensors
    through the object store: no shared filesystem needed; this process writes the log).

    ``trust_code``: import a Python model file the log's stored config names (refused otherwise: the
    log may come from someone else; ``wmstudio.models.code_trust``).
    """
    with WriterLock(log_path) as lock:  # one writer per log: not while a run or another landscape writes to it
        return _compute(Path(log_path), spec, callback, control or RunControl(), device, workers, overwrite, threads,
                        ray_address, trust_code, lock)


def _compute(log_path: Path, spec: LandscapeSpec, callback: EventCallback, control: RunControl, device: str,
             workers: int, overwrite: bool, threads: int, ray_address: Any, trust_code: bool,
             lock: WriterLock | None = None) -> store.Landscape:
    use_threads(threads)  # 0: the process's default, never what an earlier job of the app set
    ctx = load_context(log_path, device, trust_code)
    _check_local_workers(ctx, workers, ray_address)
    spec = spec.resolved(ctx.stages_with_weights())
    kind = kind_of(spec.kind)
    if kind.ray_refusal and ray_address is not None:
        raise ConfigError("ray", kind.ray_refusal)
    exists = spec.name in store.list_landscapes(log_path)
    if exists and not overwrite:
        old = store.read(log_path, spec.name)
        if old.spec.resolved(ctx.stages_with_weights()).to_json() != spec.to_json():
            raise RunLogError(f"{log_path}: landscape {spec.name!r} exists with other settings; "
                              "choose another name or overwrite it")
        if old.status == Status.FINISHED:
            callback(LandscapeFinished(spec.name, Status.FINISHED, 0.0, "already computed"))
            return old
    else:
        t0 = time.perf_counter()
        try:
            _create(ctx, spec, log_path, callback, control)
        except Cancelled:  # while finding a Hessian kind's directions or training a curve: nothing was stored
            callback(LandscapeFinished(spec.name, Status.CANCELLED, time.perf_counter() - t0,
                                       f"cancelled while {kind.setup_text} (nothing stored)"))
            return _nothing_stored(spec)
    ls = store.read(log_path, spec.name)
    done = ls.done.reshape(-1).copy()
    callback(LandscapeStarted(str(log_path), spec.name, spec.kind, tuple(ls.done.shape), int(done.sum()),
                              copy.deepcopy(ls)))
    levels = [lv[~done[lv]] for lv in _levels(tuple(ls.done.shape), spec.coarse)]
    start = time.perf_counter()
    keys = METRICS + LINE_METRICS if kind.straight_segment else METRICS  # a curve: its straight segment's too
    state = {"since": time.perf_counter(), "idx": [], "vals": {m: [] for m in keys}, "done": int(done.sum())}

    def record(level: int, idx: np.ndarray, vals: dict[str, np.ndarray], force: bool = False) -> None:
        state["idx"].append(idx)
        for m in keys:
            state["vals"][m].append(vals[m])
        state["done"] += len(idx)
        callback(LandscapePoints(spec.name, level, tuple(int(i) for i in idx),
                                 {m: tuple(float(v) for v in vals[m]) for m in keys}, state["done"], len(done)))
        if force or time.perf_counter() - state["since"] >= COMMIT_SECONDS:
            flush()

    def flush() -> None:
        if state["idx"]:
            if lock is not None:
                lock.check()  # the lock file or the log removed or replaced meanwhile: stop, never share the log
            now = time.perf_counter()
            store.commit_points(log_path, spec.name, np.concatenate(state["idx"]),
                                {m: np.concatenate(state["vals"][m]) for m in keys}, now - state["since"])
            state["since"], state["idx"], state["vals"] = now, [], {m: [] for m in keys}

    try:
        local = ray_address is None and workers <= 1
        ev = make_evaluator(ctx, spec, likely=likely_precision(ctx, spec, ls)) if local else None
        precision, ev = _choose_precision(ctx, spec, log_path, ls, ev)
        if ray_address is not None:
            _run_ray(log_path, spec, device, max(1, workers), levels, record, control, ray_address, trust_code)
        elif workers > 1:
            _run_pool(log_path, spec, device, workers, levels, record, control, trust_code)
        else:
            assert ev is not None
            ev.use_precision(precision)
            store.set_attrs(log_path, spec.name, ev.notes)  # the layout, folding and batch size used
            points = points_from_store(ctx, log_path, spec.name)
            estimate = estimate_points(ev, len(done) - int(done.sum()))
            if kind.straight_segment:  # each point is evaluated twice: on the path and on the straight segment
                estimate = (estimate[0], 2 * estimate[1], 2 * estimate[2], estimate[3])
            store.set_attrs(log_path, spec.name, {"estimate": estimate_text(estimate)})
            callback(LandscapeEstimate(spec.name, *estimate))
            chunk = 16
            for level, idx in enumerate(levels):
                for s in range(0, len(idx), chunk):
                    part = idx[s:s + chunk]
                    record(level, part, evaluate_points(ev, points, part, control))
                flush()
    except Cancelled:
        flush()
        store.set_status(log_path, spec.name, Status.CANCELLED, "cancelled by the user")
        callback(LandscapeFinished(spec.name, Status.CANCELLED, time.perf_counter() - start))
        return store.read(log_path, spec.name)
    except Exception as exc:
        flush()
        store.set_status(log_path, spec.name, Status.FAILED, f"{type(exc).__name__}: {exc}")
        callback(LandscapeFinished(spec.name, Status.FAILED, time.perf_counter() - start, str(exc)))
        raise
    flush()
    store.set_status(log_path, spec.name, Status.FINISHED)
    callback(LandscapeFinished(spec.name, Status.FINISHED, time.perf_counter() - start))
    return store.read(log_path, spec.name)


def _nothing_stored(spec: LandscapeSpec) -> store.Landscape:
    """A landscape cancelled before its group was written: status cancelled, no points."""
    shape = (0,) if kind_of(spec.kind).line else (0, 0)
    return store.Landscape(spec.name, spec.kind, str(Status.CANCELLED), spec, {}, {m: np.zeros(shape) for m in METRICS},
                           np.zeros(shape, dtype=bool), {}, [], np.zeros((0, 2)))


def _check_local_workers(ctx: Any, workers: int, ray_address: Any) -> None:
    """More local workers (processes, or actors of a local Ray instance) than cores or memory allow: a
    ``ConfigError`` with the reason (``worker_limit``), before anything is started or written."""
    from wmstudio.landscape.worker_limit import check_workers, worker_bytes

    address = getattr(ray_address, "address", ray_address)
    if workers <= 1 or (ray_address is not None and address):
        return  # one process, or a cluster's actors (the cluster bounds them)
    model = sum(t.numel() * t.element_size() for t in ctx.model.state_dict().values())
    data = sum(t.numel() * t.element_size() for t in (ctx.test.images, ctx.owner.images, ctx.trigger_images))
    check_workers(workers, worker_bytes(model, data))


def _run_pool(log_path: Path, spec: LandscapeSpec, device: str, workers: int, levels: list[np.ndarray],
              record: Any, control: RunControl, trust_code: bool = False) -> None:
    import multiprocessing as mp

    from wmstudio.sweep.watchdog import Watchdog

    threads = max(1, torch.get_num_threads() // workers)
    with Watchdog.start(), ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_pool_worker_init,
                             initargs=(str(log_path), spec.name, device, threads, trust_code)) as pool:
        for level, idx in enumerate(levels):
            # chunks of at most ~64 points: a cancel waits for one chunk per worker, not a whole level
            parts = np.array_split(idx, max(1, min(len(idx), max(workers * 4, len(idx) // 64))))
            pending: set[Future] = {pool.submit(_worker_eval, p) for p in parts if len(p)}
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    part, vals = fut.result()
                    record(level, part, vals)
                if control.cancelled:
                    for fut in pending:
                        fut.cancel()
                    raise Cancelled()


def _run_ray(log_path: Path, spec: LandscapeSpec, device: str, workers: int, levels: list[np.ndarray],
             record: Any, control: RunControl, target: Any, trust_code: bool = False) -> None:
    """Points on Ray actors: see ``wmstudio.landscape.distributed`` (``target``: an address or a RayTarget)."""
    from wmstudio.landscape.distributed import RayTarget, run_on_ray

    run_on_ray(log_path, spec, device, workers, levels, record, control,
               target if isinstance(target, RayTarget) else RayTarget(address=target or ""), trust_code=trust_code)
