"""Pause and cancel tokens the engine checks once per batch."""

from __future__ import annotations

import threading

from wmstudio.errors import Cancelled


class RunControl:
    """Thread-safe pause/cancel switch shared by a controller (GUI, CLI) and the engine.

    The engine calls :meth:`checkpoint` between batches: it blocks while paused and raises
    :class:`~wmstudio.errors.Cancelled` once cancelled, so both take effect within one batch.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused engine so it can see the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise Cancelled when cancelled."""
        while not self._running.wait(timeout=0.1):
            if self._cancel.is_set():
                break
        if self._cancel.is_set():
            raise Cancelled()
