"""Progress of long work, described once: the CLI prints it, the app shows it.

``ProgressTracker`` reads engine events and keeps where a job is (stage, step, overall fraction
across every planned stage, time left, paused) and words each event that deserves a line. There is
one time-left formula (elapsed time over the fraction done) for training stages and landscapes.
``ProgressPrinter`` renders the tracker to a terminal.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from wmstudio.events import (
    CurvatureFinished,
    CurvatureProgress,
    CurvatureStarted,
    CurveTrainingProgress,
    CurveTrainingStarted,
    Error,
    Event,
    LandscapeEstimate,
    LandscapeFinished,
    LandscapePoints,
    LandscapeStarted,
    Metrics,
    Note,
    Phase,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    Step,
    Warning,
)
from wmstudio.metric_names import stage_label
from wmstudio.status import Status


def fmt_time(seconds: float) -> str:
    """mm:ss, h:mm:ss, or --:-- when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def time_left(elapsed: float, fraction: float) -> float:
    """Seconds left when ``fraction`` of the work took ``elapsed`` seconds (inf before any progress)."""
    return elapsed * (1 - fraction) / fraction if fraction > 0 else math.inf


def estimate_text(estimate: tuple[int, float, float, int]) -> str:
    """A landscape's estimate (points, seconds a point, seconds in all, bytes) in words."""
    from wmstudio.memory import gib

    points, per, total, memory = estimate
    return (f"{points} points x {per:.3g} s (one timed pass of the model) = {fmt_time(total)}, "
            f"memory about {gib(memory)}")


def format_metrics(values: dict[str, float]) -> str:
    short = {"test_acc": "test", "trigger_acc": "trigger", "drift_rel": "drift", "p_value": "p"}
    parts = [f"{short[k]} {values.get(k, math.nan):{'.1e' if k == 'p_value' else '.3f'}}" for k in short]
    return "  ".join(parts)


RUNNING_MAX = 0.99  # the overall share a run shows until its RunFinished


@dataclass
class ProgressState:
    kind: str = ""  # "run" | "landscape" | "" (nothing started)
    stage: str = ""  # the stage, or the landscape's name
    stages: tuple[str, ...] = ()
    done: int = 0  # steps of this stage, or points of this landscape
    total: int = 0
    epoch: int = 0
    loss: float = math.nan
    overall: float = 0.0  # 0..1 over every planned stage
    seconds_left: float = math.inf  # in this stage / landscape
    paused: bool = False
    finished: str = ""  # the final status once the job ended
    phase: str = ""  # the work before the stage's training (``Phase.what``), or its curvature after it
    unit: str = "step"  # what ``done`` counts in a phase (steps; Hessian-vector products of a curvature job)
    at_most: bool = False  # ``total`` is an upper bound (a curvature job stops once Lanczos converges)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class ProgressTracker:
    """Follows one job's events; ``update`` returns the line an event deserves (or None)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.state = ProgressState()
        self._start = clock()
        self._start_done = 0
        self._paused_at: float | None = None

    # ------------------------------------------------------------ pausing (the clock stops)
    def set_paused(self, paused: bool) -> None:
        if paused and self._paused_at is None:
            self._paused_at = self.clock()
        elif not paused and self._paused_at is not None:
            self._start += self.clock() - self._paused_at
            self._paused_at = None
        self.state.paused = paused

    def _elapsed(self) -> float:
        return (self._paused_at if self._paused_at is not None else self.clock()) - self._start

    def _restart_clock(self, done: int = 0) -> None:
        self._start, self._start_done = self.clock(), done
        if self._paused_at is not None:
            self._paused_at = self._start

    def _advance(self, done: int, total: int) -> None:
        s = self.state
        s.done, s.total = done, total
        frac = (done - self._start_done) / max(1, total - self._start_done)
        s.seconds_left = time_left(self._elapsed(), frac) if done < total else 0.0
        if s.kind == "run" and s.stages and s.stage in s.stages:
            s.overall = min(RUNNING_MAX, (s.stages.index(s.stage) + s.fraction) / len(s.stages))
        else:
            s.overall = s.fraction

    # ------------------------------------------------------------ events
    def update(self, e: Event) -> str | None:
        s = self.state
        if isinstance(e, RunStarted):
            self.state = ProgressState(kind="run", stages=tuple(e.stages), paused=s.paused)
            return f"run -> {e.log_path}  on {e.device}  stages: {' -> '.join(e.stages)}"
        if isinstance(e, Phase):
            first = s.phase != e.what or s.stage != e.stage
            s.stage, s.phase, s.epoch, s.unit, s.at_most = e.stage, e.what, 0, "step", False
            if first:
                self._restart_clock(e.done)
            self._advance(e.done, max(1, e.total))
            return f"[{e.stage}] {e.what}: {e.total} steps" if first else None
        if isinstance(e, StageStarted):
            s.stage, s.epoch, s.phase, s.unit, s.at_most = e.stage, 0, "", "step", False
            self._restart_clock()
            self._advance(0, max(1, e.epochs * e.steps_per_epoch))
            return f"[{e.stage}] {e.epochs} epochs x {e.steps_per_epoch} steps"
        if isinstance(e, Step):
            s.stage, s.epoch, s.loss = e.stage, e.epoch, e.loss
            self._advance(e.step, e.total_steps)
            return None
        if isinstance(e, Metrics):
            if not float(e.epoch).is_integer():
                return None  # per-step evaluations are plotted, not worded
            return f"[{e.stage}] epoch {e.epoch:g}: {format_metrics(e.values)}"
        if isinstance(e, StageFinished):
            if s.stages and e.stage in s.stages:
                # a full bar only once the run has ended: the last stage's curvature may still follow
                s.overall = min(RUNNING_MAX, (s.stages.index(e.stage) + 1) / len(s.stages))
            extra = f" ({e.message})" if e.message else ""
            return f"[{e.stage}] {e.status}{extra} in {fmt_time(self._elapsed())}"
        if isinstance(e, Warning):
            return f"warning: {e.message}"
        if isinstance(e, Note):
            return f"[{e.stage}] {e.message}"
        if isinstance(e, Error):
            return f"error: {e.message}"
        if isinstance(e, RunFinished):
            s.finished = e.status
            if e.status == Status.FINISHED:
                s.overall = 1.0
            return f"run {e.status}" + (f": {e.message}" if e.message else "") + f" -> {e.log_path}"
        if isinstance(e, LandscapeStarted):
            self.state = ProgressState(kind="landscape", stage=e.name, paused=s.paused)
            self._restart_clock(e.done)
            total = int(math.prod(e.shape))
            self._advance(e.done, total)
            return f"landscape {e.name}: {e.kind}, {total} points" + (f" ({e.done} already done)" if e.done else "")
        if isinstance(e, LandscapePoints):
            if s.kind != "landscape" or s.stage != e.name:  # points of a surface whose start was not seen
                s = self.state = ProgressState(kind="landscape", stage=e.name, paused=s.paused)
                self._restart_clock()
            s.epoch = e.level
            self._advance(e.done, e.total)
            return None
        if isinstance(e, LandscapeEstimate):
            return f"landscape {e.name}: estimate: " + estimate_text((e.points, e.point_seconds, e.seconds,
                                                                       e.memory_bytes))
        if isinstance(e, CurveTrainingStarted):
            from wmstudio.memory import gib

            self.state = ProgressState(kind="landscape", stage=e.name, paused=s.paused)
            self._restart_clock()
            return (f"landscape {e.name}: training the curve's bend: estimate: {e.steps} steps x "
                    f"{e.step_seconds:.3g} s = {fmt_time(e.seconds)}, memory about {gib(e.memory_bytes)}")
        if isinstance(e, CurveTrainingProgress):
            if s.kind != "landscape" or s.stage != e.name:
                s = self.state = ProgressState(kind="landscape", stage=e.name, paused=s.paused)
                self._restart_clock()
            s.epoch, s.loss, s.phase = e.epoch, e.loss, "training the curve's bend"
            self._advance(e.done, e.total)
            return None
        if isinstance(e, CurvatureProgress):
            overall = s.overall  # the stage's training is done: its curvature leaves the overall share as it is
            self._advance(e.done, max(1, e.total))
            s.overall = overall
            return None
        if isinstance(e, CurvatureStarted):
            from wmstudio.memory import gib

            overall = s.overall
            s.stage, s.phase, s.unit, s.at_most = e.stage, f"curvature of the {e.key} loss", "Hessian-vector products", True
            self._restart_clock()
            self._advance(0, max(1, e.products))
            s.overall = overall
            return (f"[{e.stage}] curvature {e.key}: estimate: at most {e.products} Hessian-vector products, "
                    f"{fmt_time(e.seconds)}, memory about {gib(e.memory_bytes)}")
        if isinstance(e, CurvatureFinished):
            values = ", ".join(f"{k} {v:.4g}" for k, v in e.values.items())
            extra = f": {e.message}" if e.message else ""
            return f"[{e.stage}] curvature {e.key} {e.status} in {fmt_time(e.seconds)}" + (f" ({values})" if values else "") + extra
        if isinstance(e, LandscapeFinished):
            s.finished = e.status
            if e.status == Status.FINISHED:
                s.overall = 1.0
            extra = f": {e.message}" if e.message else ""
            return f"landscape {e.name} {e.status} in {fmt_time(e.seconds)}{extra}"
        return None

    # ------------------------------------------------------------ words
    def status_line(self) -> str:
        """One line for a status bar: where the job is, how far overall, time left, paused."""
        s = self.state
        if not s.kind:
            return ""
        stage = stage_label(s.stage) if s.kind == "run" else s.stage  # "fine-tune (attack)", as the plots say
        overall = f"overall {round(1000 * s.overall) // 10}%"  # as the app's bar shows it (0..1000, whole percent)
        if s.kind == "landscape" and s.phase:  # a curve's bend training, before its points
            text = f"landscape {s.stage} · {s.phase} · epoch {s.epoch} · step {s.done}/{s.total} · loss {s.loss:.3f}"
        elif s.kind == "landscape":
            text = f"landscape {s.stage} · level {s.epoch} · {s.done}/{s.total} points"
        elif s.phase:
            text = (f"{stage} · {s.phase} · {s.unit} {s.done} (at most {s.total})" if s.at_most
                    else f"{stage} · {s.phase} · {s.unit} {s.done}/{s.total}")
            if len(s.stages) > 1:
                text += f" · {overall}"
        else:
            text = f"{stage or 'starting'} · epoch {s.epoch} · step {s.done}/{s.total}"
            if math.isfinite(s.loss):
                text += f" · loss {s.loss:.3f}"
            if len(s.stages) > 1:
                text += f" · {overall} (stage {s.stages.index(s.stage) + 1 if s.stage in s.stages else 0}" \
                        f"/{len(s.stages)})"
        if s.finished:
            return f"{text} · {s.finished}"
        if s.paused:
            return f"paused · {text}"  # first: a narrow status bar cuts the end
        left = f"up to {fmt_time(s.seconds_left)} left" if s.at_most else f"{fmt_time(s.seconds_left)} left"
        return f"{text} · {left}" + (" in stage" if s.kind == "run" else "")


class ProgressPrinter:
    """An event callback that renders progress to ``stream`` (stderr by default): a live bar on a
    terminal; elsewhere (a log file, a pipe) a landscape's progress as a plain line per level and
    every ``PLAIN_INTERVAL`` seconds."""

    PLAIN_INTERVAL = 5.0

    def __init__(self, stream: TextIO | None = None, width: int = 28, interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width, self.interval = width, interval
        self.tracker = ProgressTracker()
        self._last_draw = 0.0
        self._bar_shown = False
        self._plain_level = -1  # the landscape level of the last plain progress line

    def _line(self, text: str) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[2K")
            self._bar_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        line = self.tracker.update(event)
        if line is not None:
            self._line(line)
        elif isinstance(event, (LandscapePoints, CurveTrainingProgress)) and not self.tty:
            # a log file or pipe: a plain line when a level starts and every few seconds, no bar
            now = time.monotonic()
            level = event.level if isinstance(event, LandscapePoints) else -2
            if level != self._plain_level or now - self._last_draw >= self.PLAIN_INTERVAL:
                self._plain_level, self._last_draw = level, now
                self._line("  " + self.tracker.status_line())
        elif isinstance(event, (Step, Phase, LandscapePoints, CurveTrainingProgress)) and self.tty:
            s = self.tracker.state
            now = time.monotonic()
            if now - self._last_draw < self.interval and s.done < s.total:
                return
            self._last_draw = now
            filled = int(s.fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r\x1b[2K[{s.stage}] |{bar}| {s.fraction:4.0%} {self.tracker.status_line()}")
            self.stream.flush()
            self._bar_shown = True
