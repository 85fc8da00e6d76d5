"""Work for the UI thread split into steps, one step per turn of the event loop.

Opening a long run's log means drawing several plots, filling the form and the run list. Done in
one slot, that blocks the UI thread for the sum of them; done as steps, input, timers and paints
are handled between them, so no single block is longer than its largest step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QTimer


class Turns(QObject):
    """Runs the first step of ``run(steps)`` now and each further one in a later turn of the event loop.

    A zero-interval timer (not a posted call) carries each step, so other timers and paints get their
    turn in between. ``run`` again, or ``cancel``, drops the steps of the previous sequence not yet run.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._steps: deque[Callable[[], object]] = deque()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._next)

    @property
    def pending(self) -> int:
        return len(self._steps)

    def run(self, steps: Iterable[Callable[[], object]]) -> None:
        self._steps = deque(steps)
        self._timer.stop()
        self._next()

    def cancel(self) -> None:
        self._steps.clear()
        self._timer.stop()

    def _next(self) -> None:
        if not self._steps:
            return
        step = self._steps.popleft()
        if self._steps:
            self._timer.start()  # before the step: a step that raises does not stop the ones after it
        step()
