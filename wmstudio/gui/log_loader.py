"""Opening and following run logs off the UI thread.

``open`` reads a whole log (series, trigger set, landscapes, summary) on a worker and emits
``opened(LogSnapshot)``; ``follow`` re-reads only the new rows of a log another process writes,
once a second, and emits ``grew(LogRows)`` for the UI thread to merge. The UI thread never opens
the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from wmstudio.errors import WmStudioError
from wmstudio.gui.log_reading import read_snapshot
from wmstudio.gui.series import RunSeries
from wmstudio.gui.worker import JobThread, in_background

FOLLOW_MS = 1000


class LogLoader(QObject):
    opened = Signal(object)  # LogSnapshot
    failed = Signal(str, str)  # path, message
    grew = Signal(object)  # LogRows of the followed log (possibly no new rows)
    idle = Signal()  # no read is in flight any more

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: set[JobThread] = set()
        self._followed: RunSeries | None = None
        self._follow_read = False
        self.timer = QTimer(self)
        self.timer.setInterval(FOLLOW_MS)
        self.timer.timeout.connect(self._tick)

    @property
    def busy(self) -> bool:
        return bool(self._threads)

    def open(self, path: str | Path) -> None:
        path = Path(path)
        self._start(lambda: read_snapshot(path), self.opened.emit,
                     lambda message, _d, _u: self.failed.emit(str(path), message))

    def follow(self, series: RunSeries | None) -> None:
        """Follow ``series``' log (None: stop). Only rows it does not hold are read."""
        self._followed = series
        (self.timer.start if series is not None else self.timer.stop)()

    def _tick(self) -> None:
        series = self._followed
        if series is None or self._follow_read:
            return  # one follow read at a time: a slow disk never piles them up
        self._follow_read = True

        def read() -> Any:
            try:
                return series.read_new(series.log_path)
            except (WmStudioError, OSError):
                return None  # caught between two commits of the writer: next tick

        def done(rows: Any) -> None:
            self._follow_read = False
            if rows is not None and self._followed is series:
                self.grew.emit(rows)

        self._start(read, done, lambda *_a: setattr(self, "_follow_read", False))

    def _start(self, work: Any, done: Any, failed: Any) -> None:
        thread = in_background(self, work, done, failed)
        self._threads.add(thread)
        thread.finished.connect(lambda t=thread: self._finished(t))

    def _finished(self, thread: JobThread) -> None:
        self._threads.discard(thread)
        if not self._threads:
            self.idle.emit()
