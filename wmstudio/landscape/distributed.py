"""A landscape's points on Ray actors, with no shared filesystem: objects out, numbers back.

The driver (the process computing the landscape) owns the run log. It rebuilds the model, the
evaluation tensors and the point set from the log once, puts them in the object store once
(``ray.put``), and starts one actor a worker; each actor builds its evaluator from those objects
on its own node and device and returns the metrics of the points it is given. The driver records
them into the log as they come. No path reaches an actor.

An actor lost with its worker or node is replaced by a new one and the chunks it still held are
evaluated again there (points are pure functions of the objects, so the surface is the same);
after ``RayTarget.retries`` losses the landscape stops as failed with every point computed so far
in the log (a rerun resumes). Each loss is printed and recorded in the landscape group's
``ray_incidents_json`` attribute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmstudio.control import RunControl
from wmstudio.errors import Cancelled, WmStudioError
from wmstudio.landscape.spec import LandscapeSpec


@dataclass
class RayTarget:
    """Where and how a landscape's points go out on Ray."""

    address: str = ""  # "" starts a local instance; else a cluster's address ("auto", "host:6379")
    resources: dict[str, float] = field(default_factory=dict)  # custom resources every actor needs
    retries: int = 3  # actors lost (with their worker or node) that are replaced before the landscape fails


class WorkersLost(WmStudioError):
    """More landscape actors were lost than ``RayTarget.retries`` allows."""


def _to(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor inside (dataclasses, dicts, lists) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _to(getattr(obj, f.name), device)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def payload(log_path: Path, spec: LandscapeSpec, trust_code: bool = False) -> dict[str, Any]:
    """Everything an actor needs, on the CPU: model, normalizer, evaluation tensors, point set, spec and
    the landscape's precision (chosen by the driver)."""
    from wmstudio.landscape import store
    from wmstudio.landscape.context import load_context
    from wmstudio.landscape.point_work import points_from_store, stored_precision

    ctx = load_context(log_path, "cpu", trust_code)
    clean = ctx.test if spec.data == "test" else ctx.owner
    n = len(clean) if spec.images == 0 else min(spec.images, len(clean))
    test = ctx.test if spec.data == "test" else ctx.test.subset(np.arange(0))
    if spec.data == "test":
        test = test.subset(np.arange(n))
    owner_needed = spec.data == "owner" or spec.bn == "recompute"
    return {"cfg": ctx.cfg, "model": ctx.model, "normalizer": ctx.normalizer, "memory_format": ctx.memory_format,
            "test": test, "owner": ctx.owner if owner_needed else ctx.owner.subset(np.arange(0)),
            "trigger_images": ctx.trigger_images, "trigger_labels": ctx.trigger_labels,
            "points": points_from_store(ctx, log_path, spec.name), "spec": spec,
            "precision": stored_precision(store.read(log_path, spec.name))}


def payload_bytes(p: dict[str, Any]) -> int:
    """The tensor bytes of a payload (what each node pulls from the object store once)."""
    total = 0

    def walk(obj: Any) -> None:
        nonlocal total
        if isinstance(obj, torch.Tensor):
            total += obj.numel() * obj.element_size()
        elif isinstance(obj, torch.nn.Module):
            for t in obj.state_dict().values():
                walk(t)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name))

    walk(p)
    return total


class LandscapeActor:
    """One model and evaluator, built on the actor's node from the objects the driver sent."""

    def __init__(self, p: dict[str, Any], device: str, threads: int) -> None:
        from wmstudio.device import resolve_device
        from wmstudio.landscape.context import LogContext
        from wmstudio.landscape.point_work import make_evaluator

        torch.set_num_threads(max(1, threads))
        dev = resolve_device(device)
        model = p["model"].to(dev).to(memory_format=p["memory_format"]).eval()
        ctx = LogContext(None, p["cfg"], dev, model, p["normalizer"], p["memory_format"],  # type: ignore[arg-type]
                         p["test"].to(dev), p["owner"].to(dev), p["trigger_images"].to(dev),
                         p["trigger_labels"].to(dev))
        self.ev = make_evaluator(ctx, p["spec"], p["precision"])
        self.points = _to(p["points"], dev)

    def evaluate(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        from wmstudio.landscape.point_work import evaluate_points

        return indices, evaluate_points(self.ev, self.points, indices)


def _lost(exc: BaseException) -> bool:
    import ray.exceptions as rex

    return isinstance(exc, rex.RayError) and not isinstance(exc, (rex.RayTaskError, rex.TaskCancelledError))


def run_on_ray(log_path: Path, spec: LandscapeSpec, device: str, workers: int, levels: list[np.ndarray],
               record: Callable[[int, np.ndarray, dict[str, np.ndarray]], None], control: RunControl,
               target: RayTarget, say: Callable[[str], None] | None = None, trust_code: bool = False) -> None:
    """Evaluate ``levels`` (coarse to fine) on ``workers`` actors, handing each chunk's metrics to ``record``."""
    from wmstudio.sweep.runner import describe_cluster, init_ray, shutdown_ray

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    ray = init_ray(target.address or None, workers)
    if target.address:
        say(describe_cluster(ray, target.address))
    actor_cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0,
                           resources=dict(target.resources) or None)(LandscapeActor)
    shared = ray.put(payload(log_path, spec, trust_code))  # once: every actor on a node reads the same copy
    actors = [actor_cls.remote(shared, device, 1) for _ in range(workers)]
    incidents: list[dict[str, Any]] = []
    try:
        for level, idx in enumerate(levels):
            parts = [p for p in np.array_split(idx, max(1, min(len(idx), workers * 4))) if len(p)]
            pending = {actors[k % workers].evaluate.remote(p): (p, k % workers) for k, p in enumerate(parts)}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                for ref in done:
                    if ref not in pending:
                        continue  # resubmitted after its actor was lost
                    part, slot = pending.pop(ref)
                    try:
                        _, vals = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - classified below
                        if not _lost(exc):
                            raise
                        incidents.append({"slot": slot, "error": " ".join(str(exc).split())[:300],
                                          "type": type(exc).__name__, "at": time.time()})
                        if len(incidents) > target.retries:
                            raise WorkersLost(f"{log_path}: {len(incidents)} landscape workers lost (last: "
                                              f"{type(exc).__name__}); the points computed so far are kept, "
                                              "run the same command again to resume") from exc
                        say(f"landscape worker {slot} lost ({type(exc).__name__}); its points go to a new one")
                        with contextlib.suppress(Exception):
                            ray.kill(actors[slot])
                        actors[slot] = actor_cls.remote(shared, device, 1)
                        lost_parts = [part] + [p for r, (p, s) in list(pending.items()) if s == slot]
                        for r in [r for r, (_, s) in pending.items() if s == slot]:
                            del pending[r]
                        for p in lost_parts:
                            pending[actors[slot].evaluate.remote(p)] = (p, slot)
                        continue
                    record(level, part, vals)
                if control.cancelled:
                    raise Cancelled()
    finally:
        if incidents:
            _record_incidents(log_path, spec.name, incidents)
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        if not target.address:
            shutdown_ray()


def _record_incidents(log_path: Path, name: str, incidents: list[dict[str, Any]]) -> None:
    from wmstudio.errors import RunLogError
    from wmstudio.landscape.store import GROUP
    from wmstudio.log_file import open_log

    with contextlib.suppress(RunLogError), open_log(log_path, "a") as f:
        g = f[GROUP][name]
        from wmstudio import h5safe, safejson

        old = safejson.loads(h5safe.text_attr(g, "ray_incidents_json", log_path, "[]") or "[]", "ray_incidents_json",
                             RunLogError)
        h5safe.set_attrs(g, {"ray_incidents_json": json.dumps((old if isinstance(old, list) else []) + incidents)})
