"""What the app is doing, without Qt: which log is shown, what job runs, its progress, how a run
is named and which earlier stage it continues from.

The window and its panels only show this object's state and forward the user's requests to it, so
all of it is tested without a display (tests/test_gui_controller.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmstudio.events import (
    CheckpointSaved,
    Event,
    LandscapeFinished,
    LandscapePoints,
    LandscapeStarted,
    RunStarted,
    TriggerSetRecorded,
)
from wmstudio.gui.log_reading import LogSnapshot
from wmstudio.gui.series import RunSeries
from wmstudio.progress import ProgressTracker
from wmstudio.stage_order import EMBED_STAGES, STARTS_FROM
from wmstudio.status import COMPLETE, Status

# the run-panel's stage choices: (label, the stages to run; None = every enabled stage)
STAGE_CHOICES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("All enabled stages", None), ("Embed only", EMBED_STAGES),
    ("Fine-tune only (the attack)", ("finetune",)), ("Removal attack only ([attack] kind)", ("attack",)),
    ("Restore only", ("restore",)))
LANDSCAPE_EVENTS = (LandscapeStarted, LandscapePoints, LandscapeFinished)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "run"


def new_log_path(runs_dir: Path, run_name: str, now: float | None = None) -> Path:
    """``runs_dir/<name>-<date>-<time>.h5``, with a counter when that file exists."""
    out = runs_dir / f"{slug(run_name)}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}.h5"
    n = 1
    while out.exists():
        out = out.with_name(f"{out.stem.rsplit('~', 1)[0]}~{n}.h5")
        n += 1
    return out


@dataclass
class RunRequest:
    """A run the user asked for: its config (the chained checkpoint filled in), log, stages."""

    cfg: Any  # wmstudio.config.ExperimentConfig
    out: Path
    stages: tuple[str, ...] | None
    note: str = ""  # said to the user: which earlier weights it continues from


@dataclass
class StudioController:
    runs_dir: Path
    log_path: Path | None = None
    series: RunSeries = field(default_factory=RunSeries)
    job: str = ""  # "" | "run" | "landscape" (one job at a time)
    tracker: ProgressTracker = field(default_factory=ProgressTracker)
    following: bool = False  # the shown log is being written by another process
    own_logs: set[Path] = field(default_factory=set)  # the logs this session's runs wrote (from the form's settings)
    watched: LogSnapshot | None = None  # what the running run's events said of its log (the app never reads it back)
    log_config: dict[str, Any] | None = None  # the shown log's config, as read or as its run's events said it

    @property
    def busy(self) -> bool:
        return bool(self.job)

    def wrote(self, path: Path) -> bool:
        """Whether a run of this session wrote ``path``: its settings are the form's own, so opening it keeps them."""
        return Path(path) in self.own_logs

    # ------------------------------------------------------------ runs
    def plan_run(self, cfg: Any, choice: int) -> RunRequest:
        """Names the run's log and, for a run of later stages only, continues from the shown log
        (the engine's plan says which stage each stage starts from)."""
        from wmstudio.errors import ConfigError
        from wmstudio.pipeline import chained_checkpoint, planned_stages

        label, stages = STAGE_CHOICES[choice]
        if stages and not planned_stages(cfg, stages):  # e.g. the attack stage with [attack] kind "finetune"
            why = (f"[attack] kind is '{cfg.attack.kind}', which the fine-tuning stage runs ('Fine-tune only'); set "
                   "attack.kind to another attack" if "attack" in stages and cfg.attack.kind == "finetune"
                   else "its stages are not enabled in the settings")
            raise ConfigError("stages", f"'{label}' would run no stage: {why}")
        note = ""
        if stages and not cfg.model.checkpoint and self.log_path is not None:
            chained = chained_checkpoint(stages, self.log_path, [s.name for s in self.series.stages])
            if chained:
                cfg.model.checkpoint = chained
                note = f"{stages[0]} starts from the {chained.rsplit(':', 1)[1]} weights of {self.log_path.name}"
        if stages and stages[0] in STARTS_FROM and not cfg.model.checkpoint:
            # an attack (or a restoration) of a freshly initialised model measures nothing: refused, not run
            after = " or ".join(STARTS_FROM[stages[0]])
            shown = f"the shown log ({self.log_path.name}) has no {after} stage" if self.log_path else "no log is shown"
            raise ConfigError("model.checkpoint", f"'{label}' needs the weights an earlier {after} stage left, and {shown}: open "
                              f"a log that has one, set model.checkpoint (e.g. RUN.h5:{STARTS_FROM[stages[0]][0]}), "
                              "or run all enabled stages")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        return RunRequest(cfg, new_log_path(self.runs_dir, cfg.run.name), stages, note)

    def begin(self, kind: str, request: RunRequest | None = None) -> None:
        """A job starts; a run shows its new log from the first event on."""
        self.job, self.following = kind, False
        self.tracker = ProgressTracker()
        if request is not None:
            self.series, self.log_path = RunSeries(label=request.cfg.run.name), request.out
            self.log_config = request.cfg.to_dict()
            self.own_logs.add(request.out)
            self.watched = LogSnapshot(request.out, self.series)

    def apply(self, events: Iterable[Event]) -> list[str]:
        """The job's events: into the series (a run's) and the progress; returns the lines worth a message."""
        lines = []
        for e in events:
            if self.job == "run" and not isinstance(e, LANDSCAPE_EVENTS):
                self.series.apply(e)
                if isinstance(e, RunStarted):
                    self.series.log_path = e.log_path
                self._note(e)
            line = self.tracker.update(e)
            if line is not None:
                lines.append(line)
        return lines

    def _note(self, e: Event) -> None:
        """What a run's event says of its log beyond the series: its config, trigger set, saved weights."""
        snap = self.watched
        if snap is None:
            return
        if isinstance(e, RunStarted):
            snap.path, snap.config = Path(e.log_path), dict(e.config)
        elif isinstance(e, TriggerSetRecorded):
            snap.trigger = (e.images, e.labels, e.scheme, list(e.class_names) or None)
        elif isinstance(e, CheckpointSaved) and e.stage not in snap.stages_with_weights:
            snap.stages_with_weights.append(e.stage)

    def watched_log(self) -> LogSnapshot | None:
        """The log of the run that just ended, as its events described it (None: no run wrote one)."""
        snap, self.watched = self.watched, None
        if self.log_path is not None and not self.log_path.exists():
            self.log_path = None  # the run ended before writing its log: the title names no file
        if snap is None or not snap.path.exists():
            return None
        snap.series = self.series
        return snap

    def set_paused(self, paused: bool) -> None:
        self.tracker.set_paused(paused)

    def end(self) -> str:
        """The job is over; returns what it was."""
        kind, self.job = self.job, ""
        self.tracker.set_paused(False)
        return kind

    # ------------------------------------------------------------ logs
    def adopt(self, series: RunSeries, config: dict[str, Any] | None = None) -> bool:
        """An opened log becomes the shown one (not while a job writes another); False if not adopted.
        ``config``: the config the log records, as read or as the run's events said it."""
        if self.busy:
            return False
        self.series, self.log_path = series, Path(series.log_path)
        self.log_config = dict(config) if isinstance(config, dict) else None
        self.following = series.log_status == Status.RUNNING
        return True

    def merge(self, rows: Any) -> bool:
        """New rows of the followed log (``RunSeries.read_new``); following stops once its writer is
        done. Returns whether the shown series changed (rows of another log, or during a job: no)."""
        if self.busy or not self.following or rows.path != self.series.log_path:
            return False
        changed = self.series.merge(rows)
        self.following = self.series.log_status == Status.RUNNING
        return changed

    def stages_with_weights(self) -> list[str]:
        """The shown run's stages that ended (their weights can be exported)."""
        return [s.name for s in self.series.stages if s.status in COMPLETE]

    def title(self) -> str:
        """The window title: the app and the log it shows (and its state when not finished)."""
        if self.log_path is None:
            return "Watermark Studio"
        state = Status.RUNNING if self.job == "run" else self.series.log_status
        extra = f" ({state})" if state and state != Status.FINISHED else ""
        return f"{self.log_path.name}{extra} — Watermark Studio"

    def stage_names(self) -> list[str]:
        return [s.name for s in self.series.stages]


def landscape_kinds(available: Sequence[str]) -> dict[str, str]:
    """For each landscape kind, why a log whose stages with saved weights are ``available`` cannot
    have it ("" when it can): the engine's own check of a default landscape of that kind."""
    from wmstudio.errors import ConfigError
    from wmstudio.landscape.spec import KINDS, LandscapeSpec

    reasons = {}
    for kind in KINDS:
        try:
            LandscapeSpec(kind=kind).resolved(list(available))
            reasons[kind] = ""
        except ConfigError as exc:
            reasons[kind] = str(exc)
    return reasons


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose values are not the same in every one of ``configs`` (for Compare)."""
    flat = [flatten_config(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return [k for k in keys if k != "run.name" and len({repr(f.get(k)) for f in flat}) > 1]


def flatten_config(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and all(isinstance(x, str) for x in v):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out
