"""Pause and cancel tokens the engine checks once per batch, and a way to cancel a call that has no batches
(a user's model file being imported)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from wmstudio.errors import Cancelled

T = TypeVar("T")
_current: ContextVar[RunControl | None] = ContextVar("wmstudio_run_control", default=None)


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


@contextmanager
def controlling(control: RunControl) -> Iterator[RunControl]:
    """``control`` is the current thread's job control while the block runs (see :func:`cancellable`)."""
    token = _current.set(control)
    try:
        yield control
    finally:
        _current.reset(token)


def current_control() -> RunControl | None:
    return _current.get()


def cancellable(call: Callable[[], T], poll_s: float = 0.1) -> T:
    """``call()``'s result, or :class:`Cancelled` as soon as the current job is cancelled, even while ``call``
    has not returned (an import that sleeps or hangs: it never reaches a batch). ``call`` then runs on in a
    daemon thread whose result is dropped; it cannot hold the process open at exit. Without a current job
    control (the CLI, whose Ctrl+C interrupts the call itself) ``call`` runs here. Its exceptions, SystemExit
    included, are raised here as they were raised there."""
    control = _current.get()
    if control is None:
        return call()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="wmstudio-cancellable", daemon=True).start()
    while not done.wait(poll_s):
        if control.cancelled:
            raise Cancelled()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
