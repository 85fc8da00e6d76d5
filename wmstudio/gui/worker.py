"""Engine work on a background thread. The UI thread never trains or evaluates.

The engine's callback only appends plain event objects to a deque (thread-safe, no Qt); the UI
drains it on a timer and redraws at most that often, so a fast stream of training steps can never
flood the event loop. Completion and failure arrive as queued Qt signals.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from wmstudio.control import RunControl, controlling
from wmstudio.errors import WmStudioError
from wmstudio.events import Event, EventCallback

Job = Callable[[EventCallback, RunControl], Any]
SWITCH_INTERVAL_S = 0.001


_switch_lock = threading.Lock()
_switch_users = 0  # job threads running with the short switch interval
_switch_saved = 0.0  # the interval before the first of them started


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """Python's GIL switch interval at ``SWITCH_INTERVAL_S`` while any job thread runs, and back to what it
    was once the last one has ended. The interval is the whole process's: with several threads at once, the
    first sets it and the last restores it."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def stopped_by(exc: BaseException) -> str:
    """The one-line message for a job ended by a ``BaseException`` that is not an ``Exception``."""
    if isinstance(exc, SystemExit):
        code = "" if exc.code is None else repr(exc.code)
        return f"the job's code called sys.exit({code}) (a model file or plug-in?); the job was stopped"
    return f"the job was stopped by {type(exc).__name__}: {exc}".rstrip(": ")


class JobThread(QThread):
    """Runs ``job(callback, control)`` once; ``done(result)`` or ``failed(message, details, user_error)``."""

    done = Signal(object)
    failed = Signal(str, str, bool)

    def __init__(self, job: Job, name: str = "job", parent: Any = None) -> None:
        super().__init__(parent)
        self.job = job
        self.name = name
        self.control = RunControl()
        self.events: deque[Event] = deque()
        self.result: Any = None
        self.error: str = ""

    def run(self) -> None:  # the worker thread
        # Python's default 5 ms GIL switch interval lets a busy worker keep the UI thread waiting
        # that long at every hand-over; a shorter one keeps redraws smooth (see
        # benchmarks/bench_gui_responsiveness.py). It is restored when the last job thread ends.
        with short_switch_interval(), controlling(self.control):  # a call the engine cannot check is cancelled too
            self._run()

    def _run(self) -> None:
        try:
            self.result = self.job(self.events.append, self.control)
        except WmStudioError as exc:
            self.error = str(exc)
            self.failed.emit(str(exc), traceback.format_exc(), True)
            return
        except Exception as exc:  # noqa: BLE001 - reported to the user in a dialog, with details
            self.error = f"{type(exc).__name__}: {exc}"
            self.failed.emit(self.error, traceback.format_exc(), False)
            return
        except BaseException as exc:  # noqa: BLE001 - SystemExit or KeyboardInterrupt raised in the job's code
            # (e.g. a user's model file): it ends this job as failed, never the thread silently
            self.error = stopped_by(exc)
            self.failed.emit(self.error, traceback.format_exc(), False)
            return
        self.done.emit(self.result)

    def drain(self) -> list[Event]:
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out


class _Keeper(QObject):
    """Holds every worker thread the app starts until it has ended, then lets it go (on the UI thread,
    after waiting the moment it takes to return from ``run``): no thread is destroyed while it runs, and
    none is deleted twice (a parent and a ``deleteLater`` both owning it). When the app quits, it waits
    for those still running (a check or a read; the window cancels a run or landscape before it closes)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[JobThread] = set()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.join_all)

    def keep(self, thread: JobThread) -> None:
        self.threads.add(thread)
        thread.finished.connect(self.release)

    @Slot()
    def release(self) -> None:
        for t in [t for t in self.threads if t.isFinished()]:
            t.wait()
            self.threads.discard(t)

    @Slot()
    def join_all(self) -> None:
        for t in list(self.threads):
            t.wait()
        self.release()


_keeper: _Keeper | None = None


def start_thread(thread: JobThread) -> JobThread:
    """Start ``thread``, kept referenced until it has ended: the one way the app keeps its worker threads
    alive (a job, a background read, a check). ``thread`` has no Qt parent."""
    global _keeper
    if _keeper is None:
        _keeper = _Keeper()
    _keeper.keep(thread)
    thread.start()
    return thread


def in_background(parent: Any, work: Callable[[], Any], done: Callable[[Any], None],
                  failed: Callable[[str, str, bool], None] | None = None, name: str = "read") -> JobThread:
    """Runs ``work()`` on a worker thread; ``done(result)`` or ``failed(message, details, user_error)``
    are called on the UI thread (only while ``parent`` still exists)."""
    thread = JobThread(lambda _cb, _ctl: work(), name)
    thread.done.connect(done if parent is None else _guarded(parent, done))
    if failed is not None:
        thread.failed.connect(failed if parent is None else _guarded(parent, failed))
    return start_thread(thread)


def _guarded(parent: Any, slot: Callable[..., None]) -> Callable[..., None]:
    """``slot``, skipped once ``parent`` (a QObject) has been deleted."""
    from shiboken6 import isValid

    def call(*args: Any) -> None:
        if isValid(parent):
            slot(*args)

    return call
