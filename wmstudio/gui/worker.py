"""Engine work on a background thread. The UI thread never trains or evaluates.

The engine's callback only appends plain event objects to a deque (thread-safe, no Qt); the UI
drains it on a timer and redraws at most that often, so a fast stream of training steps can never
flood the event loop. Completion and failure arrive as queued Qt signals.
"""

from __future__ import annotations

import sys
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QThread, Signal

from wmstudio.control import RunControl
from wmstudio.errors import WmStudioError
from wmstudio.events import Event, EventCallback

Job = Callable[[EventCallback, RunControl], Any]
SWITCH_INTERVAL_S = 0.001


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
        # benchmarks/bench_gui_responsiveness.py).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
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
        self.done.emit(self.result)

    def drain(self) -> list[Event]:
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out


def in_background(parent: Any, work: Callable[[], Any], done: Callable[[Any], None],
                  failed: Callable[[str, str, bool], None] | None = None, name: str = "read") -> JobThread:
    """Runs ``work()`` on a worker thread; ``done(result)`` or ``failed(message, details, user_error)``
    are called on the UI thread. The thread deletes itself once finished."""
    thread = JobThread(lambda _cb, _ctl: work(), name, parent)
    thread.done.connect(done)
    if failed is not None:
        thread.failed.connect(failed)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
