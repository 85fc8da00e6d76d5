"""The driver's side of a sweep's Ray tasks: submit them, follow their streams, write their files, retry.

Every task is a generator (``wmstudio.sweep.tasks.run_task``). The dispatcher holds each run log's
writer lock while its task is out, writes each log snapshot the task streams back (atomically: a
reader sees the previous snapshot or the new one), and writes the run's JSON record. A task lost
with its worker or node (a Ray system error, not an error of the run itself) is submitted again,
up to ``retries`` times; each loss is recorded in the run's ``attempts``. After the last one the
run is recorded as failed and its log, as of its last finished stage, is marked failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmstudio.errors import RunLogError
from wmstudio.log_lock import WriterLock
from wmstudio.runlog import RunLogWriter
from wmstudio.status import Status
from wmstudio.sweep import delta, staging
from wmstudio.sweep.records import write_json


@dataclass
class TaskState:
    """One embed or attack as the driver follows it."""

    kind: str  # what the summary counts: "embed" | "attack"
    call: str  # what the task runs: "embed" | "attack" | "full"
    run_id: str
    plan: dict[str, Any]
    rec_path: Path
    log_path: Path
    args: tuple[Any, ...] = ()  # (data refs, embed ref, files) for a resubmission
    attempts: list[dict[str, Any]] = field(default_factory=list)  # lost attempts
    ran_on: dict[str, Any] = field(default_factory=dict)
    returned: int = 0  # bytes of log changes received
    image: bytes = b""  # the log as written, which the next change applies to
    embed_path: Path | None = None  # an attack: the driver's copy of the embed log it starts from
    staged: bool = False  # the config's files were sent (see wmstudio.sweep.staging)
    relabels: list[tuple[str, str]] = field(default_factory=list)  # (worker path, driver path) in the log
    submitted: float = 0.0
    lock: WriterLock | None = None

    def base_record(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "values": self.plan["values"],
                "embed_id": self.plan.get("embed_id", "")}


@dataclass
class Finished:
    task: TaskState
    record: dict[str, Any]
    log: bytes | None  # the final log's bytes (None: the run never wrote one)


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` as the file ``path`` in one step, never through a link (``safe_files.write_bytes``)."""
    from wmstudio.safe_files import write_bytes

    write_bytes(path, data, overwrite=True)


RELABELLED = (("", ("config_toml", "config_json", "model_json")), ("trigger", ("params_json",)))


def relabel(log: Path, pairs: list[tuple[str, str]]) -> None:
    """Write each pair's driver path where the run recorded its worker path (the worker's copies of the
    embed log, a checkpoint, a model file, a trigger folder), so that the log names the driver's files,
    as a local run's would."""
    from wmstudio import h5safe
    from wmstudio.log_file import open_log

    with open_log(log, "a") as f:
        for group, keys in RELABELLED:
            if group and group not in f:
                continue
            attrs = f[group].attrs if group else f.attrs
            for key in keys:
                value = attrs.get(key)
                if isinstance(value, bytes):
                    value = value.decode()
                if isinstance(value, str) and any(old in value for old, _ in pairs):
                    for old, new in pairs:
                        value = value.replace(old, new)
                    h5safe.set_attrs(f[group] if group else f, {key: value})  # with its checksum


def _short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def _lost(exc: BaseException) -> bool:
    """A Ray system failure (worker or node lost, object lost): worth running the task again."""
    import ray.exceptions as rex

    if isinstance(exc, (rex.TaskCancelledError, rex.RayTaskError)):
        return False  # cancelled by us, or an error inside the task itself
    return isinstance(exc, rex.RayError)


class Dispatcher:
    def __init__(self, ray: Any, remote: Any, threads: int, retries: int,
                 say: Callable[[str], None]) -> None:
        from wmstudio.source_pin import source_fingerprint

        self.ray, self.remote, self.threads, self.retries, self.say = ray, remote, threads, retries, say
        self.source = source_fingerprint()  # the engine's source as the sweep starts: every run must run it
        self.streams: dict[Any, TaskState] = {}
        self.retried: dict[str, list[str]] = {}
        self.returned = 0

    def __len__(self) -> int:
        return len(self.streams)

    def tasks(self) -> list[TaskState]:
        return list(self.streams.values())

    def submit(self, task: TaskState, data_refs: dict[Any, Any], embed: Any = None,
               files: dict[str, Any] | None = None) -> None:
        if task.lock is None:
            task.lock = WriterLock(task.log_path).acquire()  # no second writer while the task is out
        task.args = (data_refs, embed, files or {})
        task.staged = bool(files)
        task.submitted = time.time()
        plan = {**task.plan, "run_id": task.run_id, "source": self.source}
        stream = self.remote.remote(task.call, plan, self.threads, data_refs, embed, files or {})
        self.streams[stream] = task
        write_json(task.rec_path, {**task.base_record(), "status": str(Status.QUEUED), "attempts": task.attempts})

    def poll(self, timeout: float) -> list[Finished]:
        """Handle what the tasks streamed within ``timeout`` seconds; returns the tasks that ended."""
        if not self.streams:
            return []
        ready, _ = self.ray.wait(list(self.streams), num_returns=1, timeout=timeout)
        if ready:  # and whatever else is ready by now
            ready, _ = self.ray.wait(list(self.streams), num_returns=len(self.streams), timeout=0)
        ended = []
        for stream in ready:
            task = self.streams[stream]
            try:
                message = self.ray.get(next(stream))
            except StopIteration:  # ended without its "done" message (should not happen)
                message = None
                exc: BaseException | None = RuntimeError("the task ended without a result")
            except Exception as e:  # noqa: BLE001 - a Ray error: the worker, its node or an object was lost
                message, exc = None, e
            else:
                exc = None
            if message is not None:
                done = self._handle(task, message)
                if done is not None:
                    del self.streams[stream]
                    ended.append(done)
                continue
            del self.streams[stream]
            assert exc is not None
            failed = self._lost(task, exc)
            if failed is not None:
                ended.append(failed)
        return ended

    def _handle(self, task: TaskState, message: dict[str, Any]) -> Finished | None:
        event = message.get("event")
        if event == "started":
            task.image = b""  # a new attempt streams its log from the start
            scratch = str(message.get("scratch", ""))
            task.relabels = staging.relabels(scratch, task.plan["config"]) if task.staged and scratch else []
            if task.embed_path is not None and scratch:
                task.relabels.insert(0, (f"{scratch}/embed.h5", str(task.embed_path)))
            task.ran_on = {k: message.get(k) for k in ("node", "host", "pid", "cwd")}
            write_json(task.rec_path, {**task.base_record(), "status": str(Status.RUNNING), "ran_on": task.ran_on,
                                       "attempts": task.attempts})
        elif event == "stage":
            self._write_log(task, message["log"])
        elif event == "done":
            if message.get("log") is not None:
                self._write_log(task, message["log"])
            record = {**message["record"], "attempts": task.attempts, "bytes_returned": task.returned}
            write_json(task.rec_path, record)
            self._release(task)
            return Finished(task, record, task.image if message.get("log") is not None else None)
        return None

    def _write_log(self, task: TaskState, change: dict[str, Any]) -> None:
        task.image = delta.apply(task.image, change)
        write_atomic(task.log_path, task.image)
        if task.relabels:
            relabel(task.log_path, task.relabels)
        task.returned += delta.nbytes(change)
        self.returned += delta.nbytes(change)

    def _lost(self, task: TaskState, exc: BaseException) -> Finished | None:
        """The task's worker, node or an object it needed was lost: run it again, or record the failure."""
        error = _short_error(exc)
        lost = _lost(exc)
        if lost:
            task.attempts.append({"error": error, "ran_on": task.ran_on, "at": time.time()})
            self.retried.setdefault(task.run_id, []).append(error)
            if len(task.attempts) <= self.retries:
                self.say(f"  {task.kind} {task.run_id} lost ({error[:120]}); running it again "
                         f"(attempt {len(task.attempts) + 1} of {self.retries + 1})")
                self.submit(task, *task.args)
                return None
            error = f"lost {len(task.attempts)} time(s) with its worker or node; last: {error}"
        record = {**task.base_record(), "status": str(Status.FAILED), "error": error, "attempts": task.attempts,
                  "seconds": time.time() - task.submitted, "finals": {}, "ran_on": task.ran_on,
                  "bytes_returned": task.returned}
        self._mark_log(task, Status.FAILED, error)
        write_json(task.rec_path, record)
        self._release(task)
        return Finished(task, record, None)

    def _mark_log(self, task: TaskState, status: str, message: str) -> None:
        """A log the task streamed part of stays (its finished stages); its status says why it stops there."""
        if task.log_path.is_file():
            with contextlib.suppress(RunLogError, OSError):
                RunLogWriter(task.log_path).set_status(status, message)

    def _release(self, task: TaskState) -> None:
        if task.lock is not None:
            task.lock.release()
            task.lock = None

    def cancel(self) -> int:
        """Cancel every task still out; their records and partial logs say so. Returns how many attacks."""
        attacks = 0
        for stream, task in list(self.streams.items()):
            with contextlib.suppress(Exception):
                self.ray.cancel(stream, force=True)
            self._mark_log(task, Status.CANCELLED, "the sweep was interrupted")
            write_json(task.rec_path, {**task.base_record(), "status": str(Status.CANCELLED), "error": "",
                                       "attempts": task.attempts, "finals": {}})
            self._release(task)
            attacks += task.kind == "attack"
        self.streams.clear()
        return attacks

    def close(self) -> None:
        for task in self.streams.values():
            self._release(task)
