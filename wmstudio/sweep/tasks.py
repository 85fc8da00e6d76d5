"""One run of a sweep, as executed on a Ray worker: a generator task that streams its run log back.

The worker is handed objects, never the driver's paths: the run's config, the decoded data sets
(``ObjectRef``s the driver put in the object store once per sweep), and for an attack the
watermarked model's embed log as bytes (its weights and trigger set). It writes the run log into a
scratch folder of its own (deleted at the end) and yields messages the driver turns into files:

- ``{"event": "started", "node", "host", "pid", "cwd", "scratch"}`` as soon as it runs (the
  scratch folder's path lets the driver write its own paths into the log where the run recorded the
  embed log it started from);
- ``{"event": "stage", "stage", "status", "log": delta}`` after each stage has ended: the log as it
  stands then (a stage boundary is a commit, so it is a valid log), as the blocks that changed since
  the previous message (``wmstudio.sweep.delta``; the first one is the whole file), so a worker
  killed with its node loses at most the stage in progress;
- ``{"event": "done", "record", "log": delta | None}`` at the end: the run's record and final log.

The driver writes every file (see ``wmstudio.sweep.runner``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wmstudio.stage_order import AFTER_EMBED, EMBED_STAGES
from wmstudio.status import Status
from wmstudio.sweep import delta, staging
from wmstudio.sweep.records import finals


def _where() -> dict[str, Any]:
    node = ""
    try:
        import ray

        node = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - not inside Ray (a direct call in a test)
        pass
    return {"node": node, "host": socket.gethostname(), "pid": os.getpid(), "cwd": os.getcwd()}


def _execute(kind: str, plan: dict[str, Any], log: Path, threads: int, embed_log: Path | None,
             data: dict[Any, Any], on_stage: Any) -> dict[str, Any]:
    """Run the pipeline into ``log``; returns the record (a failure is recorded, never raised)."""
    import torch

    from wmstudio.config_io import load_config
    from wmstudio.data.registry import provided
    from wmstudio.events import StageFinished
    from wmstudio.pipeline import run_experiment

    record: dict[str, Any] = {"status": str(Status.FAILED), "error": ""}
    cpu = time.thread_time()

    def callback(event: object) -> None:
        if isinstance(event, StageFinished):
            on_stage(event.stage, event.status)

    try:
        torch.set_num_threads(max(1, threads))
        cfg = load_config(data=plan["config"])
        cfg.run.threads = max(1, threads)
        with provided(data):
            if kind == "embed":
                result = run_experiment(cfg, log, callback, stages=EMBED_STAGES, overwrite=True)
            elif embed_log is not None:
                cfg.model.checkpoint = f"{embed_log}:embed"
                result = run_experiment(cfg, log, callback, stages=AFTER_EMBED, trigger_from=embed_log,
                                        overwrite=True)
            else:  # no shared embed (embedding disabled): the run's own pipeline
                result = run_experiment(cfg, log, callback, overwrite=True)
        record.update(status=str(result.status), error=result.message if result.status != Status.FINISHED else "")
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        record.update(status=str(Status.FAILED), error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["cpu_seconds"] = time.thread_time() - cpu  # of the run's thread: how much of a core it got
    return record


def _record(plan: dict[str, Any], kind: str, start: float, source: str, result: dict[str, Any]) -> dict[str, Any]:
    """A run's record as the worker sends it: the plan's names, ``result`` (status, error, ...), its time and
    place, the engine source it ran, and no final metrics (the caller adds them from the log)."""
    return {"run_id": plan["run_id"], "kind": kind, "values": plan["values"], "embed_id": plan.get("embed_id", ""),
            "started": start, **result, "seconds": time.time() - start, "ran_on": _where(), "source": source,
            "finals": {}}


def run_task(kind: str, plan: dict[str, Any], threads: int, data_refs: dict[Any, Any],
             embed: Any = None, files: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The generator a Ray worker runs for one embed, attack or full run (see the module's docstring).

    ``data_refs``: data key -> ``ObjectRef`` of the decoded data set (empty: read the roots here, a
    data set mounted on every node). ``embed``: the embed log's bytes, or an ``ObjectRef`` of them.
    ``files``: the files the config names, as ``wmstudio.sweep.staging.wanted`` lists them (empty:
    read the config's paths here).
    """
    from wmstudio.source_pin import pin_engine

    start = time.time()
    source = pin_engine()  # the engine this worker runs, whatever is edited on disk later
    scratch = Path(tempfile.mkdtemp(prefix="wmstudio-run-"))
    try:
        yield {"event": "started", **_where(), "scratch": str(scratch)}
        wanted = plan.get("source", "")
        if wanted and wanted != source:
            error = (f"the engine this worker loaded (source {source}) is not the one the sweep started with "
                     f"(source {wanted}): the source was edited after the sweep started, or this node has "
                     "another version; nothing ran. Run the sweep again (its finished runs are kept)")
            yield {"event": "done", "log": None,
                   "record": _record(plan, kind, start, source, {"status": str(Status.FAILED), "error": error})}
            return
        data = _fetch(data_refs)
        if files:
            plan = {**plan, "config": staging.materialise(scratch, files, plan["config"], _fetch_one)}
        embed_log = None
        if embed is not None:
            embed_log = scratch / "embed.h5"
            embed_log.write_bytes(_fetch_one(embed))
        log = scratch / "run.h5"
        messages: queue.Queue[dict[str, Any]] = queue.Queue()
        sent = [b""]  # the log as the driver has it

        def changes() -> dict[str, Any]:
            current = log.read_bytes()
            out = delta.diff(sent[0], current)
            sent[0] = current
            return out

        def on_stage(stage: str, status: str) -> None:  # on the run's thread, between two commits
            messages.put({"event": "stage", "stage": stage, "status": status, "log": changes()})

        result: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: result.update(
            _execute(kind, plan, log, threads, embed_log, data, on_stage)), name="wmstudio-run", daemon=True)
        worker.start()
        while worker.is_alive() or not messages.empty():
            try:
                yield messages.get(timeout=0.2)
            except queue.Empty:
                continue
        worker.join()
        record = _record(plan, kind, start, source, result)
        with contextlib.suppress(Exception):  # no log (failed before it was written): no finals
            record["finals"] = finals(log)
        yield {"event": "done", "record": record, "log": changes() if log.is_file() else None}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fetch_one(value: Any) -> Any:
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


def _fetch(refs: dict[Any, Any]) -> dict[Any, Any]:
    return {key: _fetch_one(ref) for key, ref in refs.items()}
