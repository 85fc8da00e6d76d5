"""Terminal progress for long work: a live bar on a TTY, one line per evaluation otherwise."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from wmstudio.events import (
    CheckpointSaved,
    Error,
    Event,
    Metrics,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    Step,
    Warning,
)


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_metrics(values: dict[str, float]) -> str:
    parts = [f"test {values.get('test_acc', math.nan):.3f}", f"trigger {values.get('trigger_acc', math.nan):.3f}",
             f"drift {values.get('drift_rel', math.nan):.3f}", f"p {values.get('p_value', math.nan):.1e}"]
    return "  ".join(parts)


class ProgressPrinter:
    """An event callback that renders progress to ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, width: int = 28, interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width, self.interval = width, interval
        self._last_draw = 0.0
        self._stage_start = time.monotonic()
        self._bar_shown = False

    def _line(self, text: str) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[2K")
            self._bar_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._line(f"run -> {event.log_path}  on {event.device}  stages: {' -> '.join(event.stages)}")
        elif isinstance(event, StageStarted):
            self._stage_start = time.monotonic()
            self._line(f"[{event.stage}] {event.epochs} epochs x {event.steps_per_epoch} steps")
        elif isinstance(event, Step) and self.tty:
            now = time.monotonic()
            if now - self._last_draw < self.interval and event.step < event.total_steps:
                return
            self._last_draw = now
            frac = event.step / max(1, event.total_steps)
            filled = int(frac * self.width)
            eta = (now - self._stage_start) * (1 - frac) / frac if frac > 0 else math.inf
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r\x1b[2K[{event.stage}] |{bar}| {frac:4.0%} epoch {event.epoch} "
                              f"loss {event.loss:.4f} lr {event.lr:.2g} eta {_fmt_time(eta)}")
            self.stream.flush()
            self._bar_shown = True
        elif isinstance(event, Metrics) and float(event.epoch).is_integer():
            self._line(f"[{event.stage}] epoch {event.epoch:g}: {format_metrics(event.values)}")
        elif isinstance(event, StageFinished):
            extra = f" ({event.message})" if event.message else ""
            self._line(f"[{event.stage}] {event.status}{extra} in {_fmt_time(time.monotonic() - self._stage_start)}")
        elif isinstance(event, CheckpointSaved):
            pass
        elif isinstance(event, Warning):
            self._line(f"warning: {event.message}")
        elif isinstance(event, Error):
            self._line(f"error: {event.message}")
        elif isinstance(event, RunFinished):
            self._line(f"run {event.status}: {event.log_path}")
