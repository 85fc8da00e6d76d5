"""Computing a landscape into a run log: set-up, coarse-to-fine evaluation, resume, worker fan-out."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmstudio.control import RunControl
from wmstudio.errors import Cancelled, ConfigError, RunLogError
from wmstudio.events import (
    CurveTrainingProgress,
    CurveTrainingStarted,
    EventCallback,
    LandscapeEstimate,
    LandscapeFinished,
    LandscapePoints,
    LandscapeStarted,
    ignore,
)
from wmstudio.landscape import store
from wmstudio.landscape.context import LogContext, load_context
from wmstudio.landscape.curve import BendTrainer
from wmstudio.landscape.directions import Plane, pca_plane, plane_through, random_direction
from wmstudio.landscape.evaluator import PointEvaluator
from wmstudio.landscape.flat import ParamVector, has_batchnorm
from wmstudio.landscape.grid import refinement_levels
from wmstudio.landscape.point_work import (
    evaluate_points,
    make_evaluator,
    points_from_store,
    stage_vector,
    stored_precision,
)
from wmstudio.landscape.points import line_layout
from wmstudio.landscape.spec import LINE_KINDS, LINE_METRICS, METRICS, LandscapeSpec
from wmstudio.progress import estimate_text
from wmstudio.runlog import WriterLock
from wmstudio.status import Status

COMMIT_SECONDS = 1.0


# ---------------------------------------------------------------- set-up

def _extent(coords: np.ndarray, margin: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square box around the points (axes are true distances, so the picture keeps its aspect)."""
    lo, hi = coords.min(0), coords.max(0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()), 1e-12) * (0.5 + margin)
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)


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


def _hessian_axes(ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
                  control: RunControl | None) -> tuple[torch.Tensor, dict[str, Any]]:
    """The top eigenvectors (two for hessian, one for hessian_line) of the chosen loss at the centre
    model, and the attributes recording them (loss, images, eigenvalues, Lanczos' residuals and steps)."""
    from wmstudio.curvature.job import loss_inputs
    from wmstudio.landscape.hessian_axes import top_eigenvectors

    if spec.loss == "trigger":
        if len(ctx.trigger_labels) == 0:
            raise RunLogError(f"{log_path}: the log holds no trigger set (loss=trigger needs one)")
        x, y = loss_inputs(ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)
    else:
        clean = ctx.test if spec.data == "test" else ctx.owner
        x, y = loss_inputs(clean.images, clean.labels, ctx.normalizer, spec.hessian_images)
    ctx.model.load_state_dict(ctx.state(spec.center))
    k = 2 if spec.kind == "hessian" else 1
    axes = top_eigenvectors(ctx.model, x, y, k, spec.hessian_iter, spec.seed, spec.loss, spec.center, callback, control)
    attrs = axes.record(spec.loss, len(y), spec.center)
    attrs["axis_names"] = [f"Hessian eigenvector {i + 1} ({spec.loss} loss, eigenvalue {v:.4g})"
                           for i, v in enumerate(axes.values)]
    return axes.vectors, attrs


def _create_curve(ctx: LogContext, spec: LandscapeSpec, log_path: Path, attrs: dict[str, Any],
                  callback: EventCallback, control: RunControl | None) -> None:
    """Train the bend of the curve between the two stages (the estimate first; ``control`` can cancel,
    and then nothing is stored), and write the empty landscape group with the bend."""
    pv = ParamVector(ctx.model)
    w0, w1 = (stage_vector(ctx, pv, m) for m in spec.models)
    if float((w1 - w0).norm()) < 1e-12:
        raise RunLogError(f"{log_path}: kind=curve: {spec.models[0]!r} and {spec.models[1]!r} have identical "
                          "weights: nothing to connect")
    owner = ctx.owner
    trainer = BendTrainer(ctx.model, w0, w1, owner.images, owner.labels, ctx.normalizer, spec.curve_lr,
                          spec.curve_batch, spec.seed)
    steps = spec.curve_epochs * trainer.steps_per_epoch
    per = trainer.time_step()
    batch_bytes = owner.images[:spec.curve_batch].numel() * owner.images.element_size()
    memory = 7 * pv.numel * 4 + owner.images.numel() * owner.images.element_size() + 4 * batch_bytes
    callback(CurveTrainingStarted(spec.name, steps, per, steps * per, memory))
    last = [0.0]

    def on_step(epoch: int, done: int, total: int, loss: float) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] >= 0.25:  # a few events a second at most
            last[0] = now
            callback(CurveTrainingProgress(spec.name, epoch, done, total, loss))

    trained = trainer.train(spec.curve_epochs, control, on_step)
    t = np.linspace(0.0, 1.0, spec.resolution)
    attrs.update(trained.attrs(spec.curve_epochs, spec.curve_lr, spec.curve_batch, len(owner.labels)))
    attrs.update({"model_names": list(spec.models), "curve_estimate": estimate_text((steps, per, steps * per, memory)),
                  "axis_units": f"curve parameter t (0: {spec.models[0]}, 1: {spec.models[1]})",
                  "buffers": f"re-estimated at each point on {spec.bn_batches} batches of the owner's data, "
                             "along the curve and the straight segment alike",
                  "ends_distance": float((w1 - w0).norm()),
                  "bend_offset": float((trained.bend - (w0 + w1) / 2).norm())})
    store.create(log_path, spec, (len(t),), {"t": t, "model_coords": np.array([0.0, 1.0]),
                                             "bend": trained.bend.cpu().numpy().astype(np.float32)}, attrs)


def _create(ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback = ignore,
            control: RunControl | None = None) -> None:
    """Build the directions and the grid, and write the empty landscape group (the Hessian kinds first
    find their eigenvectors: ``callback`` hears the estimate and ``control`` can cancel)."""
    pv = ParamVector(ctx.model)
    attrs: dict[str, Any] = {"bn_stats": spec.bn if has_batchnorm(ctx.model) else "none (no BatchNorm)",
                             "data": spec.data, "models_json": spec.models}
    arrays: dict[str, np.ndarray] = {}
    if spec.kind == "curve":
        _create_curve(ctx, spec, log_path, attrs, callback, control)
        return
    if spec.kind == "hessian_line":
        vectors, found = _hessian_axes(ctx, spec, log_path, callback, control)
        center = stage_vector(ctx, pv, spec.center)
        t = np.linspace(-spec.span, spec.span, spec.resolution)
        arrays.update({"t": t, "model_coords": np.zeros(1), "origin": center.cpu().numpy().astype(np.float32),
                       "directions": vectors.cpu().numpy().astype(np.float32)})
        attrs.update(found)
        attrs.update({"model_names": [spec.center], "buffers": f"fixed: {spec.center}",
                      "axis_units": "parameter-space distance along the top Hessian eigenvector (unit norm)"})
        store.create(log_path, spec, (len(t),), arrays, attrs)
        return
    if spec.kind == "line":
        anchors = [stage_vector(ctx, pv, m) for m in spec.models]
        seg, frac, t, starts = line_layout(anchors, spec.resolution, spec.margin)
        arrays.update({"t": t, "segment": seg, "frac": frac, "model_coords": starts})
        attrs.update({"model_names": spec.models, "axis_units": "parameter-space distance along the path",
                      "buffers": "interpolated between checkpoints"})
        store.create(log_path, spec, (len(t),), arrays, attrs)
        return
    if spec.kind in ("random", "hessian"):
        center = stage_vector(ctx, pv, spec.center)
        if spec.kind == "random":
            d1 = random_direction(pv, center, spec.seed, spec.norm, spec.bias_bn)
            d2 = random_direction(pv, center, spec.seed + 1, spec.norm, spec.bias_bn)
            attrs.update({"axis_units": "direction units (filter-normalised)" if spec.norm == "filter" else
                          f"direction units ({spec.norm} normalisation)", "direction_seeds": [spec.seed, spec.seed + 1],
                          "norm": spec.norm, "bias_bn": spec.bias_bn, "dir_type": spec.dir_type,
                          "buffers": f"fixed: {spec.center}"})
            if spec.dir_type == "states":
                attrs["buffers"] = (f"{spec.center}'s, moved along the directions: each running statistic's "
                                    "direction is the statistic itself (Li et al.'s states rule), so a point (x, y) "
                                    "scales them by 1 + x + y (variances clipped at 0)")
        else:
            vectors, found = _hessian_axes(ctx, spec, log_path, callback, control)
            d1, d2 = vectors[0], vectors[1]
            attrs.update(found)
            attrs.update({"axis_units": "parameter-space distance along unit Hessian eigenvectors",
                          "buffers": f"fixed: {spec.center}"})
        plane = Plane(center, d1, d2)
        xs = ys = np.linspace(-spec.span, spec.span, spec.resolution)
        names = [spec.center]
        coords = np.zeros((1, 2))
    elif spec.kind == "displacement":
        a, b, c = (stage_vector(ctx, pv, m) for m in spec.models)
        if float((b - a).norm()) < 1e-12 or float((c - b).norm()) < 1e-12:
            raise RunLogError(f"{log_path}: kind=displacement: {spec.models[0]!r} and {spec.models[1]!r}, or "
                              f"{spec.models[1]!r} and {spec.models[2]!r}, have identical weights: no displacement")
        plane = Plane(stage_vector(ctx, pv, spec.center), b - a, c - b)
        names = list(spec.models)
        projected = [plane.project(w) for w in (a, b, c)]
        if max(r for *_, r in projected) > 1e-3 * max(1.0, float((b - a).norm()), float((c - b).norm())):
            raise RunLogError(f"{log_path}: kind=displacement: the two displacements are parallel: no plane "
                              "(use kind=line)")
        coords = np.asarray([p[:2] for p in projected])
        half = float(np.abs(coords).max()) * (1 + spec.margin)
        xs = ys = np.linspace(-half, half, spec.resolution)
        attrs.update({"axis_units": "multiples of each displacement (1 = the whole step)",
                      "axis_names": [f"attack: {names[1]} - {names[0]}", f"restoration: {names[2]} - {names[1]}"],
                      "displacements": [[names[0], names[1]], [names[1], names[2]]],
                      "buffers": "interpolated between the three models"})
    else:
        if spec.kind == "plane":
            w = [stage_vector(ctx, pv, m) for m in spec.models]
            try:
                plane = plane_through(*w)
            except ValueError as exc:
                raise RunLogError(f"{log_path}: {exc}") from exc
            names = list(spec.models)
            coords = np.asarray([plane.project(v)[:2] for v in w])
            attrs.update({"buffers": "interpolated between the three models"})
            fit = coords
        else:  # pca
            center = stage_vector(ctx, pv, spec.center)
            rows = [ctx.reader.trajectory(m) for m in spec.models]
            if any(len(r) == 0 for r in rows):
                raise RunLogError(f"{log_path}: kind=pca needs recorded trajectories of {spec.models} "
                                  "(run with run.record_trajectory = true)")
            pts = torch.from_numpy(np.concatenate(rows)).to(center.device)
            try:
                plane, explained = pca_plane(pts, center)
            except ValueError as exc:
                raise RunLogError(f"{log_path}: {exc}") from exc
            available = ctx.stages_with_weights()
            names = [n for n in ("embed", "finetune", "restore") if n in available]
            coords = [plane.project(stage_vector(ctx, pv, n))[:2] for n in names]
            if "embed" not in names and "finetune" in spec.models:
                # an attack run started from another run's watermarked model: it is the first row
                # of the fine-tuning trajectory
                names.insert(0, "embed")
                first = torch.from_numpy(ctx.reader.trajectory("finetune")[0]).to(center.device)
                coords.insert(0, plane.project(first)[:2])
            coords = np.asarray(coords)
            fit = np.concatenate([coords, np.asarray([plane.project(r)[:2] for r in pts])])
            attrs.update({"explained_variance": list(explained), "buffers": f"fixed: {spec.center}"})
        (x0, x1), (y0, y1) = _extent(fit, spec.margin)
        xs, ys = np.linspace(x0, x1, spec.resolution), np.linspace(y0, y1, spec.resolution)
        attrs["axis_units"] = "parameter-space distance (orthonormal axes)"
    arrays.update({"x": xs, "y": ys, "model_coords": coords,
                   "origin": plane.origin.cpu().numpy().astype(np.float32),
                   "directions": torch.stack([plane.u, plane.v]).cpu().numpy().astype(np.float32)})
    attrs["model_names"] = names
    store.create(log_path, spec, (len(ys), len(xs)), arrays, attrs)
    store.write_trajectories(log_path, spec.name, _project_trajectories(ctx, plane))


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
            ev = make_evaluator(ctx, spec)  # workers: the check runs here, in the driver, before they start
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
    if threads:
        torch.set_num_threads(threads)
    ctx = load_context(log_path, device, trust_code)
    _check_local_workers(ctx, workers, ray_address)
    spec = spec.resolved(ctx.stages_with_weights())
    if spec.kind == "curve" and ray_address is not None:
        raise ConfigError("ray", "kind=curve runs in one process (its points are few; the bend's training is one "
                                 "sequence of steps): drop --ray")
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
            what = "training the curve's bend" if spec.kind == "curve" else "finding the directions"
            callback(LandscapeFinished(spec.name, Status.CANCELLED, time.perf_counter() - t0,
                                       f"cancelled while {what} (nothing stored)"))
            return _nothing_stored(spec)
    ls = store.read(log_path, spec.name)
    done = ls.done.reshape(-1).copy()
    callback(LandscapeStarted(str(log_path), spec.name, spec.kind, tuple(ls.done.shape), int(done.sum())))
    levels = [lv[~done[lv]] for lv in _levels(tuple(ls.done.shape), spec.coarse)]
    start = time.perf_counter()
    keys = METRICS + LINE_METRICS if spec.kind == "curve" else METRICS  # a curve: its straight segment's too
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
        ev = make_evaluator(ctx, spec) if local else None
        precision, ev = _choose_precision(ctx, spec, log_path, ls, ev)
        if ray_address is not None:
            _run_ray(log_path, spec, device, max(1, workers), levels, record, control, ray_address, trust_code)
        elif workers > 1:
            _run_pool(log_path, spec, device, workers, levels, record, control, trust_code)
        else:
            assert ev is not None
            ev.precision = precision
            store.set_attrs(log_path, spec.name, ev.notes)  # the layout, folding and batch size used
            points = points_from_store(ctx, log_path, spec.name)
            estimate = estimate_points(ev, len(done) - int(done.sum()))
            if spec.kind == "curve":  # each point is evaluated twice: on the curve and on the straight segment
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
    shape = (0,) if spec.kind in LINE_KINDS else (0, 0)
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
