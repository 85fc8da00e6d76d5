"""Running a sweep on Ray: a local instance sized to this machine by default, or a cluster.

Shared work first: each embed group's watermarked model is one task; the attacks on it depend on
that task (Ray starts them when it finishes). Finished runs are skipped on a re-run, so an
interrupted sweep resumes; a failed run is recorded with its error and the others go on.
On a cluster, ``--out`` must be a folder every node can write (a shared filesystem).
"""

from __future__ import annotations

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

    @property
    def done(self) -> int:
        return self.skipped + self.finished + self.failed + self.cancelled


_WATCHDOG: list[Watchdog] = []  # the watchdog of the local Ray instance this process started, if any


def _init_ray(address: str | None, workers: int) -> Any:
    """Connect to ``address``, or start a local Ray instance guarded by a watchdog (see ``shutdown_ray``)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, single-user instance
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            # Ray's processes outlive a killed driver (its agents even a clean shutdown): the watchdog
            # terminates whatever of them is left when this process ends, however it ends
            _WATCHDOG.append(Watchdog.start())
            handlers = _python_handlers()
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
    import json

    old = read_json(out / "sweep.json")
    new = json.loads(spec.to_json())
    if old is not None and (old.get("base") != new["base"] or old.get("axes") != new["axes"]):
        raise RunLogError(f"{out}: holds another sweep ({old.get('name', '?')!r}, other base config or axes); "
                          "choose another --out, or pass --overwrite to run this one there from scratch")


def run_sweep(spec: SweepSpec, out: str | Path, address: str | None = None, workers: int = 0,
              progress: Callable[[str], None] | None = None, shutdown: bool = True,
              overwrite: bool = False) -> SweepSummary:
    """Run the sweep into ``out``, skipping the runs a previous invocation finished there.

    ``overwrite``: run every run again, replacing what ``out`` holds (also another sweep's folder,
    which is refused otherwise). Run logs of unfinished runs are always replaced: that is the resume.
    """
    out = Path(out)
    if not overwrite:
        _refuse_other_sweep(spec, out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "embeds").mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", {**__import__("json").loads(spec.to_json()), "out": str(out)})
    summary = SweepSummary(total=len(spec.runs))
    start = time.time()
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))

    # invalid combinations are recorded at once and never run
    todo = []
    for r in spec.runs:
        rec_path, log_path = out / "runs" / f"{r.run_id}.json", out / "runs" / f"{r.run_id}.h5"
        if r.error:
            write_json(rec_path, {"run_id": r.run_id, "values": r.values, "status": "failed", "error": r.error,
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

    ray = _init_ray(address, workers)
    parallel = max(1, int(ray.cluster_resources().get("CPU", 1)))
    threads = 1
    remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
    embed_refs: dict[str, Any] = {}
    pending: dict[Any, tuple[str, Path]] = {}
    waits_on: dict[Any, str] = {}  # attack -> the embed it still waits for ("" when it can run)
    embed_needed = {r.embed_id for r in todo if r.config.get("embed", {}).get("enabled", True)}
    for embed_id, plan in spec.embed_groups().items():
        if embed_id not in embed_needed:
            continue
        rec_path, log_path = out / "embeds" / f"{embed_id}.json", out / "embeds" / f"{embed_id}.h5"
        if not overwrite and is_finished(rec_path, log_path):
            embed_refs[embed_id] = read_json(rec_path)
            continue
        p = {"run_id": embed_id, "values": plan.embed_values, "config": plan.config, "embed_id": embed_id}
        ref = remote.remote("embed", p, str(log_path), threads)
        embed_refs[embed_id] = ref
        pending[ref] = ("embed", rec_path)
        write_json(rec_path, {"run_id": embed_id, "values": plan.embed_values, "status": "queued", "kind": "embed"})
    for r in todo:
        rec_path, log_path = out / "runs" / f"{r.run_id}.json", out / "runs" / f"{r.run_id}.h5"
        p = {"run_id": r.run_id, "values": r.values, "config": r.config, "embed_id": r.embed_id}
        if r.embed_id in embed_refs:
            dep = embed_refs[r.embed_id]
            ref = remote.remote("attack", p, str(log_path), threads, str(out / "embeds" / f"{r.embed_id}.h5"), dep)
        else:
            ref = remote.remote("full", p, str(log_path), threads)
        pending[ref] = ("attack", rec_path)
        waits_on[ref] = r.embed_id if r.embed_id in embed_refs and not isinstance(embed_refs[r.embed_id], dict) else ""
        write_json(rec_path, {"run_id": r.run_id, "values": r.values, "status": "queued", "kind": "attack"})

    n_tasks = len(pending)
    durations: dict[str, list[float]] = {"embed": [], "attack": []}
    last_print = 0.0
    say(f"sweep {spec.name!r}: {len(todo)} runs to do ({summary.skipped} already finished), "
        f"{n_tasks - len(todo)} shared embeds, {parallel} workers")
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                kind, rec_path = pending.pop(ref)
                rec = ray.get(ref)
                write_json(rec_path, rec)
                durations[kind].append(float(rec.get("seconds", 0.0)))
                if kind == "attack":
                    if rec["status"] == "finished":
                        summary.finished += 1
                    else:
                        summary.failed += 1
                        summary.failures[rec["run_id"]] = rec.get("error", "")
                elif rec["status"] != "finished":
                    summary.failures[f"embed {rec['run_id']}"] = rec.get("error", "")
            now = time.time()
            if now - last_print >= 2.0 or not pending:
                last_print = now
                left = len(pending)
                open_embeds = {e for e, ref in embed_refs.items() if not isinstance(ref, dict) and ref in pending}
                runnable = sum(1 for ref in pending if waits_on.get(ref, "") not in open_embeds)
                running = min(parallel, runnable)
                eta = _eta(durations, [k for k, _ in pending.values()], parallel)
                eta_text = f", ~{eta / 60:.1f} min left" if eta == eta and left else ""
                say(f"  runs: {summary.done}/{summary.total} done ({summary.finished} finished, {summary.failed} failed, "
                    f"{summary.skipped} skipped); tasks: {running} running, {max(0, left - running)} queued{eta_text}")
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        summary.cancelled = sum(1 for k, _ in pending.values() if k == "attack")
        say("sweep interrupted: finished runs are kept; run the same command again to resume")
        raise
    finally:
        summary.seconds = time.time() - start
        if shutdown and not address:
            shutdown_ray()
    return summary
