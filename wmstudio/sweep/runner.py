"""Running a sweep on Ray: a local instance sized to this machine by default, or a cluster.

The driver (this process) owns every file; no path of its ever reaches a worker. Each data set is
decoded here once and put in the object store once per sweep, and so is each file a config names
(checkpoint, model file, trigger folder: ``wmstudio.sweep.staging``); each embed group's watermarked model
is one task, and when it has finished its log's bytes (the weights and the trigger set) go into the
object store once and every attack on it is started with them. Tasks are generators (see
``wmstudio.sweep.tasks``) that stream the run log back after each stage; the driver writes it,
holding the log's writer lock while the task runs. A task lost with its worker or node is run again
up to ``retries`` times (each loss recorded in the run's record), then recorded as failed with the
log of its last finished stage kept. Finished runs are skipped on a re-run, so an interrupted sweep
resumes; a failed run is recorded with its error and the others go on.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmstudio.errors import RunLogError
from wmstudio.status import Status
from wmstudio.sweep import staging
from wmstudio.sweep.dispatch import Dispatcher, TaskState
from wmstudio.sweep.records import is_finished, read_json, write_json
from wmstudio.sweep.spec import SweepSpec
from wmstudio.sweep.tasks import run_task
from wmstudio.sweep.watchdog import Watchdog


@dataclass
class SweepSummary:
    total: int = 0
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    cancelled: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    retried: dict[str, list[str]] = field(default_factory=dict)  # run id -> why each lost attempt was lost
    bytes_sent: int = 0  # into the object store: decoded data sets and embed logs (each once)
    bytes_returned: int = 0  # run log snapshots streamed back by the tasks

    @property
    def done(self) -> int:
        return self.skipped + self.finished + self.failed + self.cancelled


_WATCHDOG: list[Watchdog] = []  # the watchdog of the local Ray instance this process started, if any
_DASHBOARD: list[str] = []  # the dashboard URL of the cluster this process connected to, if it has one


def dashboard_url() -> str:
    return _DASHBOARD[-1] if _DASHBOARD else ""


def describe_cluster(ray: Any, address: str) -> str:
    """One line on the cluster connected to: nodes, CPUs, the dashboard's link."""
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return (f"Ray cluster {address}: {nodes} node{'s' * (nodes != 1)}, {cpus} CPUs; "
            + (f"dashboard {dashboard_url()}" if dashboard_url() else "no dashboard"))


def init_ray(address: str | None, workers: int) -> Any:
    """Connect to ``address``, or start a local Ray instance guarded by a watchdog (see ``shutdown_ray``)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, single-user instance
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        handlers = _python_handlers()
        if address:
            from wmstudio.sweep.ray_address import check_ray_address

            check_ray_address(address)  # fails within a stated timeout; Ray itself retries for minutes
            context = ray.init(address=address, **kwargs)
            url = getattr(context, "dashboard_url", "") or ""
            _DASHBOARD[:] = [url if not url or "://" in url else f"http://{url}"]
        else:
            # Ray's processes outlive a killed driver (its agents even a clean shutdown): the watchdog
            # terminates whatever of them is left when this process ends, however it ends
            _WATCHDOG.append(Watchdog.start())
            ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
        for sig, handler in handlers.items():  # ray.init replaces SIGTERM's with one that ends the process
            signal.signal(sig, handler)
    return ray


def _python_handlers() -> dict[int, Any]:
    """The Python-level SIGINT/SIGTERM handlers (the CLI's), to restore after ray.init; none off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: h for sig in (signal.SIGINT, signal.SIGTERM) if callable(h := signal.getsignal(sig))}


def shutdown_ray() -> None:
    """Shut the local Ray instance down and reap what it leaves behind."""
    import ray

    try:
        ray.shutdown()
    finally:
        while _WATCHDOG:
            _WATCHDOG.pop().stop()


def _eta(durations: dict[str, list[float]], left_kinds: list[str], parallel: int) -> float:
    """Seconds left: each remaining task at the mean duration of its kind so far (NaN before any finished)."""
    every = durations["embed"] + durations["attack"]
    if not every:
        return float("nan")
    mean_all = sum(every) / len(every)
    total = 0.0
    for kind in left_kinds:
        d = durations.get(kind) or []
        total += sum(d) / len(d) if d else mean_all
    return total / parallel


def _refuse_other_sweep(spec: SweepSpec, out: Path) -> None:
    """A folder holding another sweep (other base config or axes) is not resumed into: its finished runs
    would be skipped as if they were this sweep's, and its logs replaced."""
    old = read_json(out / "sweep.json")
    new = json.loads(spec.to_json())
    if old is not None and (old.get("base") != new["base"] or old.get("axes") != new["axes"]):
        raise RunLogError(f"{out}: holds another sweep ({old.get('name', '?')!r}, other base config or axes); "
                          "choose another --out, or pass --overwrite to run this one there from scratch")


def _data_keys(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """The data sets a run with this config loads (its own, and the unrelated trigger scheme's source)."""
    from wmstudio.data.registry import data_key

    d = {"dataset": "digits", "root": "", "image_size": 0, **config.get("data", {})}
    keys = [data_key(d["dataset"], d["root"], d["image_size"])]
    t = config.get("trigger", {})
    if t.get("scheme") == "unrelated":
        src = {"name": "cifar10", "root": "", **t.get("source", {})}
        keys.append(data_key(src["name"], src["root"] or d["root"], 0))
    return keys


def _decode_data(ray: Any, keys: set[tuple[str, str, int]], configs: list[dict[str, Any]]) -> tuple[dict, int]:
    """Each data set decoded here once and put in the object store once: key -> ObjectRef, and the bytes."""
    from wmstudio.data import load_dataset

    download = any(c.get("data", {}).get("download", False) for c in configs)
    refs, nbytes = {}, 0
    for key in sorted(keys):
        name, root, size = key
        pair = load_dataset(name, root, download, size)
        nbytes += sum(t.numel() * t.element_size() for part in (pair.train, pair.test)
                      for t in (part.images, part.labels))
        refs[key] = ray.put(pair)
    return refs, nbytes


def run_sweep(spec: SweepSpec, out: str | Path, address: str | None = None, workers: int = 0,
              progress: Callable[[str], None] | None = None, shutdown: bool = True,
              overwrite: bool = False, resources: dict[str, float] | None = None, retries: int = 1,
              shared_data: bool = False, only: set[str] | None = None) -> SweepSummary:
    """Run the sweep into ``out``, skipping the runs a previous invocation finished there.

    ``overwrite``: run every run again, replacing what ``out`` holds (also another sweep's folder,
    which is refused otherwise). Run logs of unfinished runs are always replaced: that is the resume.
    ``resources``: custom Ray resources every task requires (e.g. to keep work off the head node).
    ``retries``: how many times a task lost with its worker or node is run again.
    ``shared_data``: the data roots and the files the config names exist on every node: workers read
    them there, instead of this process decoding each data set once and sending it, and the files,
    through the object store.
    ``only``: the ids of the runs to run now (``wmstudio.sweep.spec.select_runs``); the others are left for later, and
    sweep.json still lists every run of the sweep.
    """
    out = Path(out)
    if not overwrite:
        _refuse_other_sweep(spec, out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "embeds").mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", {**json.loads(spec.to_json()), "out": str(out)})
    selected = [r for r in spec.runs if only is None or r.run_id in only]
    summary = SweepSummary(total=len(selected))
    start = time.time()
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))

    # invalid combinations are recorded at once and never run
    todo = []
    for r in selected:
        rec_path, log_path = out / "runs" / f"{r.run_id}.json", out / "runs" / f"{r.run_id}.h5"
        if r.error:
            write_json(rec_path, {"run_id": r.run_id, "values": r.values, "status": str(Status.FAILED), "error": r.error,
                                  "kind": "attack", "seconds": 0.0, "finals": {}})
            summary.failed += 1
            summary.failures[r.run_id] = r.error
        elif not overwrite and is_finished(rec_path, log_path):
            summary.skipped += 1
        else:
            todo.append(r)
    if not todo:
        say(f"sweep {spec.name!r}: nothing to do ({summary.skipped} finished runs skipped, {summary.failed} invalid)")
        summary.seconds = time.time() - start
        return summary

    ray = init_ray(address, workers)
    if address:
        say(describe_cluster(ray, address))
    resources = dict(resources or {})
    parallel = _parallel(ray, resources)
    remote = ray.remote(num_cpus=1, max_retries=0, resources=resources or None)(run_task)
    jobs = Dispatcher(ray, remote, threads=1, retries=max(0, retries), say=say)
    try:
        data_refs: dict[Any, Any] = {}
        if not shared_data:
            keys = {k for r in todo for k in _data_keys(r.config)}
            data_refs, summary.bytes_sent = _decode_data(ray, keys, [r.config for r in todo])

        def data_for(config: dict[str, Any]) -> dict[Any, Any]:
            return {k: data_refs[k] for k in _data_keys(config) if k in data_refs}

        file_refs: dict[Any, Any] = {}
        if not shared_data:  # checkpoint, model file, trigger folder: each read here and sent once
            for key, blob in staging.collect([r.config for r in todo]).items():
                file_refs[key] = ray.put(blob)
                summary.bytes_sent += len(blob)

        def files_for(config: dict[str, Any], attack: bool) -> dict[str, Any]:
            files = staging.wanted(config, file_refs) if not shared_data else {}
            if attack:  # an attack starts from its embed log, not from the config's checkpoint
                files.pop("model.checkpoint", None)
            return files

        embed_objs: dict[str, Any] = {}  # embed id -> ObjectRef of its finished log's bytes
        waiting: dict[str, list[TaskState]] = {}  # embed id -> the attacks on it, until it has finished
        embed_needed = {r.embed_id for r in todo if r.config.get("embed", {}).get("enabled", True)}

        def put_embed(embed_id: str, log: bytes) -> None:
            embed_objs[embed_id] = ray.put(log)
            summary.bytes_sent += len(log)

        # Ray starts tasks in the order they are submitted, so the driver holds new embeds back: one is
        # submitted only while a worker would otherwise idle (fewer tasks out than the cluster runs at a
        # time). The attacks on finished watermarked models always go first, and each embed's attacks
        # are submitted the moment it ends, ahead of the next embed: a sweep stopped part-way leaves
        # whole embed groups, not watermarked models nobody has attacked yet.
        new_embeds: list[tuple[TaskState, dict[str, Any]]] = []
        for embed_id, plan in spec.embed_groups().items():
            if embed_id not in embed_needed:
                continue
            rec_path, log_path = out / "embeds" / f"{embed_id}.json", out / "embeds" / f"{embed_id}.h5"
            if not overwrite and is_finished(rec_path, log_path):
                put_embed(embed_id, log_path.read_bytes())
                continue
            p = {"run_id": embed_id, "values": plan.embed_values, "config": plan.config, "embed_id": embed_id}
            new_embeds.append((TaskState("embed", "embed", embed_id, p, rec_path, log_path), plan.config))
            waiting[embed_id] = []
        for r in todo:
            p = {"run_id": r.run_id, "values": r.values, "config": r.config, "embed_id": r.embed_id}
            task = TaskState("attack", "attack" if r.embed_id in embed_needed else "full", r.run_id, p,
                             out / "runs" / f"{r.run_id}.json", out / "runs" / f"{r.run_id}.h5",
                             embed_path=out / "embeds" / f"{r.embed_id}.h5" if r.embed_id in embed_needed else None)
            if r.embed_id in waiting:
                waiting[r.embed_id].append(task)
                write_json(task.rec_path, {**task.base_record(), "status": str(Status.QUEUED)})
            else:
                jobs.submit(task, data_for(r.config), embed_objs.get(r.embed_id),
                            files_for(r.config, attack=task.call == "attack"))
        def submit_embeds() -> None:
            while new_embeds and len(jobs) < parallel:
                task, config = new_embeds.pop(0)
                jobs.submit(task, data_for(config), files=files_for(config, attack=False))

        n_tasks = len(jobs) + len(new_embeds) + sum(len(v) for v in waiting.values())
        submit_embeds()
        say(f"sweep {spec.name!r}: {len(todo)} runs to do ({summary.skipped} already finished), "
            f"{n_tasks - len(todo)} shared embeds, {parallel} workers")
        durations: dict[str, list[float]] = {"embed": [], "attack": []}
        last_print = 0.0
        while len(jobs) or new_embeds or any(waiting.values()):
            for done in jobs.poll(timeout=1.0):
                task, rec = done.task, done.record
                durations[task.kind].append(float(rec.get("seconds", 0.0)))
                if task.kind == "attack":
                    if rec["status"] == Status.FINISHED:
                        summary.finished += 1
                    else:
                        summary.failed += 1
                        summary.failures[rec["run_id"]] = rec.get("error", "")
                    continue
                attacks = waiting.pop(task.run_id, [])
                if rec["status"] == Status.FINISHED and done.log is not None:
                    put_embed(task.run_id, done.log)
                    for a in attacks:
                        jobs.submit(a, data_for(a.plan["config"]), embed_objs[task.run_id],
                                    files_for(a.plan["config"], attack=True))
                    continue
                summary.failures[f"embed {task.run_id}"] = rec.get("error", "")
                for a in attacks:  # recorded failed without running: their watermarked model is missing
                    error = (f"its watermarked model (embed {task.run_id}) did not finish: "
                             f"{rec.get('error') or rec.get('status')}")
                    write_json(a.rec_path, {**a.base_record(), "status": str(Status.FAILED), "error": error, "seconds": 0.0,
                                            "finals": {}})
                    summary.failed += 1
                    summary.failures[a.run_id] = error
            submit_embeds()
            now = time.time()
            if now - last_print >= 2.0 or not len(jobs):
                last_print = now
                parallel = _parallel(ray, resources)  # nodes may have joined or left the cluster
                kinds = ([t.kind for t in jobs.tasks()] + ["embed"] * len(new_embeds)
                         + ["attack"] * sum(len(v) for v in waiting.values()))
                running = min(parallel, len(jobs))
                eta = _eta(durations, kinds, parallel)
                eta_text = f", ~{eta / 60:.1f} min left" if eta == eta and kinds else ""
                say(f"  runs: {summary.done}/{summary.total} done ({summary.finished} finished, {summary.failed} failed, "
                    f"{summary.skipped} skipped); tasks: {running} running, {max(0, len(kinds) - running)} queued"
                    f"{eta_text}")
    except KeyboardInterrupt:
        summary.cancelled = jobs.cancel() + sum(len(v) for v in waiting.values())
        say("sweep interrupted: finished runs are kept; run the same command again to resume")
        raise
    finally:
        jobs.close()
        summary.retried = dict(jobs.retried)
        summary.bytes_returned = jobs.returned
        summary.seconds = time.time() - start
        if shutdown and not address:
            shutdown_ray()
    return summary


def _parallel(ray: Any, resources: dict[str, float]) -> int:
    """How many tasks the cluster runs at a time: one a CPU, fewer where a custom resource they need is scarcer."""
    total = ray.cluster_resources()
    n = int(total.get("CPU", 1))
    for name, amount in resources.items():
        if amount > 0:
            n = min(n, int(total.get(name, 0) // amount))
    return max(1, n)
