"""The one engine job the app runs at a time (a run or a landscape), on a worker thread.

Its events are drained every ``DRAIN_MS`` on the UI thread and handed on in one batch, so a fast
stream of training steps can never flood the event loop.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from wmstudio.gui.worker import Job, JobThread, start_thread

DRAIN_MS = 50


class JobRunner(QObject):
    events = Signal(list)  # a batch of engine events
    done = Signal(str, object)  # kind, result
    failed = Signal(str, str, str, bool)  # kind, message, details, user_error

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread: JobThread | None = None
        self.kind = ""
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, kind: str, job: Job) -> None:
        if self.thread is not None:
            raise RuntimeError("a job is already running")
        self.kind = kind
        self.thread = JobThread(job, kind)  # kept alive by start_thread until it has ended
        self.thread.done.connect(lambda result: self._end(result, None))
        self.thread.failed.connect(lambda m, d, u: self._end(None, (m, d, u)))
        self.thread.finished.connect(self._ended)  # after done/failed (queued in that order)
        start_thread(self.thread)
        self._timer.start()

    def drain(self) -> None:
        if self.thread is not None:
            batch = self.thread.drain()
            if batch:
                self.events.emit(batch)

    def pause(self, paused: bool) -> None:
        if self.thread is not None:
            (self.thread.control.pause if paused else self.thread.control.resume)()

    def cancel(self) -> None:
        if self.thread is not None:
            self.thread.control.cancel()

    def _ended(self) -> None:
        """The thread ended without saying done or failed (it never should): the job failed."""
        if self.thread is not None and self.thread is self.sender():
            self._end(None, ("the job's thread ended without a result", "", False))

    def _end(self, result: Any, error: tuple[str, str, bool] | None) -> None:
        self.drain()
        kind = self.kind
        self.thread, self.kind = None, ""
        self._timer.stop()
        if error is None:
            self.done.emit(kind, result)
        else:
            self.failed.emit(kind, *error)
