"""The metric series of one run, filled live from engine events or read from a run log.

Qt-free, so it is tested on its own; the plots draw whatever it holds. ``revision`` grows with
every change, so a view redraws only when there is something new. The run log reader (h5py,
torch) is imported only when a log is read, so the app's window can open before the engine loads.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.events import (
    CurvatureFinished,
    Event,
    Metrics,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    Step,
)
from wmstudio.status import Status


@dataclass
class StageSpan:
    name: str
    start_step: int
    end_step: int
    status: str = Status.RUNNING
    epochs: int = 0
    steps_per_epoch: int = 0
    drift_reference: str = ""  # what its drift is measured from, as the log records it ("" when it does not say)


@dataclass(frozen=True)
class CurvaturePoint:
    """The Hessian curvature of one loss of a stage's final model (run.curvature, ``wmstudio curvature``)."""

    stage: int  # index into RunSeries.stages
    key: str  # the loss ("clean", "trigger"), and a layer after '@' ("clean@layer1.0.conv1")
    top_eigenvalue: float
    trace: float  # nan when no trace was measured

    @staticmethod
    def of(stage: int, key: str, result: dict[str, Any]) -> CurvaturePoint:
        """From a stored result (someone's data: anything not a number reads as nan)."""
        values = result.get("eigenvalues")
        top = values[0] if isinstance(values, list) and values else None
        return CurvaturePoint(stage, key, _number(top), _number(result.get("trace")))


def _number(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # a JSON integer of 400 digits
        return math.nan


CURVATURE_LOSSES = ("clean", "trigger")  # the series the app draws (whole model); per-layer keys stay in the log


@dataclass
class LogRows:
    """What ``RunSeries.read_new`` read from a log: its attributes and the new rows of each stage."""

    path: str
    label: str
    device: str
    status: str
    stages: list[Any]  # wmstudio.runlog_reader.StageRecord, holding only the rows not held before


@dataclass
class RunSeries:
    label: str = ""
    log_path: str = ""
    device: str = ""
    log_status: str = ""  # the log's status when read from a file (running while another process writes it)
    stages: list[StageSpan] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)  # each with 'stage' index
    train_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    layer_names: list[str] = field(default_factory=list)
    layer_l2: list[tuple[float, ...]] = field(default_factory=list)
    layer_cos: list[tuple[float, ...]] = field(default_factory=list)
    layer_steps: list[int] = field(default_factory=list)
    # one per (stage, loss) of the whole model (CURVATURE_LOSSES), in the order measured
    curvature: list[CurvaturePoint] = field(default_factory=list)
    revision: int = 0
    _held: dict[str, tuple[int, int, int]] = field(default_factory=dict, repr=False)  # rows read per stage

    # ------------------------------------------------------------ live
    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.log_path, self.device = event.log_path, event.device
        elif isinstance(event, StageStarted):
            self.stages.append(StageSpan(event.stage, event.global_step, event.global_step, Status.RUNNING,
                                         event.epochs, event.steps_per_epoch, event.drift_reference))
            if event.layer_names:
                self.layer_names = list(event.layer_names)
        elif isinstance(event, Step):
            self.train_steps.append(event.global_step)
            self.train_loss.append(event.loss)
            if self.stages:
                self.stages[-1].end_step = event.global_step
        elif isinstance(event, Metrics):
            row = {k: float(v) for k, v in event.values.items()}
            row["stage"] = float(max(0, len(self.stages) - 1))
            row["global_step"] = float(event.global_step)
            self.eval_rows.append(row)
            if event.layer_l2:
                self.layer_l2.append(tuple(event.layer_l2))
                self.layer_cos.append(tuple(event.layer_cos))
                self.layer_steps.append(event.global_step)
        elif isinstance(event, StageFinished):
            for span in reversed(self.stages):
                if span.name == event.stage:
                    span.status = event.status
                    break
        elif isinstance(event, CurvatureFinished):
            k = next((i for i in range(len(self.stages) - 1, -1, -1) if self.stages[i].name == event.stage), -1)
            if event.status != Status.FINISHED or k < 0 or not event.result:
                return
            self._set_curvature(CurvaturePoint.of(k, event.key, event.result))
        elif isinstance(event, RunFinished):
            self.log_status = event.status
        else:
            return
        self.revision += 1

    # ------------------------------------------------------------ from a log
    @staticmethod
    def from_log(path: str | Path) -> RunSeries:
        s = RunSeries(label=Path(path).stem, log_path=str(path))
        s.update_from_log(path)
        return s

    def update_from_log(self, path: str | Path) -> bool:
        """Reads the rows of ``path`` this series does not hold yet (all of them the first time).

        A log another process is writing only grows, so following it reads only its new rows.
        Returns whether anything changed."""
        return self.merge(self.read_new(path))

    def read_new(self, path: str | Path) -> LogRows:
        """The rows of ``path`` after those this series holds. Only reads: safe on a worker thread
        while the UI thread draws this series; ``merge`` then adds them (on the UI thread)."""
        from wmstudio.runlog_reader import RunLogReader

        reader = RunLogReader(path)  # the status is read before the data: "finished" means all of it is in
        return LogRows(str(path), str(reader.attrs.get("run_name", Path(path).stem)), str(reader.attrs.get("device", "")),
                       reader.status, reader.stages(dict(self._held)))

    def merge(self, rows: LogRows) -> bool:
        """Adds rows ``read_new`` read; returns whether anything changed."""
        from wmstudio.metric_names import EVAL_COLUMNS

        before = (self.log_status, len(self.train_steps), len(self.eval_rows), [sp.status for sp in self.stages],
                  list(self.curvature))
        self.label, self.log_path, self.device, self.log_status = rows.label, rows.path, rows.device, rows.status
        for rec in rows.stages:
            steps = rec.eval.get("global_step", np.zeros(0))
            train = rec.train.get("global_step", np.zeros(0))
            k = next((i for i, sp in enumerate(self.stages) if sp.name == rec.name), -1)
            if k < 0:
                start = int(steps[0]) if len(steps) else (int(train[0]) - 1 if len(train) else 0)
                self.stages.append(StageSpan(rec.name, start, start, rec.status, int(rec.config.get("epochs", 0)),
                                             drift_reference=rec.drift_reference))
                k = len(self.stages) - 1
            span = self.stages[k]
            span.status = rec.status
            span.end_step = int(max(steps.max() if len(steps) else span.end_step,
                                    train.max() if len(train) else span.end_step))
            self.train_steps.extend(int(v) for v in train)
            self.train_loss.extend(float(v) for v in rec.train.get("loss", np.zeros(0)))
            for i in range(len(steps)):
                row = {c: float(rec.eval[c][i]) for c in EVAL_COLUMNS if c in rec.eval and i < len(rec.eval[c])}
                row["stage"] = float(k)
                self.eval_rows.append(row)
            n_layers = len(rec.layer_l2)
            if n_layers:
                self.layer_names = rec.layer_names
                self.layer_l2.extend(tuple(r) for r in rec.layer_l2)
                self.layer_cos.extend(tuple(r) for r in rec.layer_cos)
                self.layer_steps.extend(int(v) for v in steps[:n_layers])
            for key, result in rec.curvature.items():
                self._set_curvature(CurvaturePoint.of(k, str(key), result))
            t, e, l_ = self._held.get(rec.name, (0, 0, 0))
            self._held[rec.name] = (t + len(train), e + len(steps), l_ + n_layers)
        changed = before != (self.log_status, len(self.train_steps), len(self.eval_rows),
                             [sp.status for sp in self.stages], list(self.curvature))
        if changed:
            self.revision += 1
        return changed

    def _set_curvature(self, point: CurvaturePoint) -> None:
        """Adds a whole-model measurement, or replaces the one of the same stage and loss (measured again);
        per-layer ones are not drawn and not held (a log may hold any number of them)."""
        if point.key not in CURVATURE_LOSSES:
            return
        for i, held in enumerate(self.curvature):
            if (held.stage, held.key) == (point.stage, point.key):
                self.curvature[i] = point
                return
        self.curvature.append(point)

    # ------------------------------------------------------------ arrays for plots
    def curvature_column(self, key: str, value: str = "top_eigenvalue") -> tuple[np.ndarray, np.ndarray]:
        """(global step, value) of one curvature series, one point per measured stage at the stage's last step
        (the model it measured); ``value``: top_eigenvalue | trace."""
        held = sorted((p for p in self.curvature if p.key == key and p.stage < len(self.stages)), key=lambda p: p.stage)
        x = np.array([self.stages[p.stage].end_step for p in held], dtype=np.float64)
        return x, np.array([getattr(p, value) for p in held], dtype=np.float64)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(global_step, values) of one evaluation series."""
        x = np.fromiter((r["global_step"] for r in self.eval_rows), dtype=np.float64, count=len(self.eval_rows))
        y = np.fromiter((r.get(name, math.nan) for r in self.eval_rows), dtype=np.float64, count=len(self.eval_rows))
        return x, y

    def loss_series(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.train_steps, dtype=np.float64), np.asarray(self.train_loss, dtype=np.float64)

    def layer_matrix(self, kind: str = "l2") -> np.ndarray:
        """(n_layers, n_evaluations) drift per layer, for the heat map."""
        rows = self.layer_l2 if kind == "l2" else self.layer_cos
        return np.asarray(rows, dtype=np.float64).T if rows else np.zeros((0, 0))

    def final(self, name: str, stage: str | None = None) -> float:
        idx = [i for i, sp in enumerate(self.stages) if stage is None or sp.name == stage]
        rows = [r for r in self.eval_rows if int(r["stage"]) in idx]
        return rows[-1].get(name, math.nan) if rows else math.nan

    def stage_collapsed(self, k: int) -> bool:
        """Whether stage ``k``'s latest evaluated model is flagged as collapsed (metrics/collapse.py);
        False where the log did not record the flag, and before the stage's first epoch: its starting point
        (``epoch`` 0) is a fresh initialisation, near chance by design, or the model the stage before
        ended with, judged there (../shared/design/measurement.md: collapse says a model cannot keep or
        lose a watermark; an untrained one has none yet)."""
        rows = [r for r in self.eval_rows if int(r["stage"]) == k and not starting_point(r)]
        return bool(rows) and rows[-1].get("collapsed", math.nan) == 1.0

    def collapse_column(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``collapsed`` flag at each evaluation, ``NOT_JUDGED`` at a stage's starting point."""
        x, y = self.column("collapsed")
        start = np.fromiter((starting_point(r) for r in self.eval_rows), dtype=bool, count=len(self.eval_rows))
        return x, np.where(start, NOT_JUDGED, y)

    def has_control(self) -> bool:
        """Whether the run recorded a control rate (logs before controls were recorded did not)."""
        return any(math.isfinite(r.get("control_acc", math.nan)) for r in self.eval_rows)

    @property
    def last_step(self) -> int:
        return self.train_steps[-1] if self.train_steps else 0

    def to_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        """Every evaluation row, one line each, with its stage name; steps and whole epochs as integers.

        An existing file is replaced only with ``overwrite``; written aside and renamed (``safe_files``)."""
        from wmstudio.metric_names import EVAL_COLUMNS
        from wmstudio.safe_files import atomic_output

        path = Path(path)
        with atomic_output(path, overwrite) as tmp, tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["stage", *EVAL_COLUMNS])
            for r in self.eval_rows:
                name = self.stages[int(r["stage"])].name if self.stages else ""
                w.writerow([name, *(_cell(r.get(c, math.nan), c in ("global_step", "epoch")) for c in EVAL_COLUMNS)])
        return path


NOT_JUDGED = -1.0  # collapse_column's value at a stage's starting point


def starting_point(row: dict[str, float]) -> bool:
    """Whether an evaluation row is its stage's starting point, before any step of it (epoch 0)."""
    return row.get("epoch", math.nan) == 0.0


def _cell(value: float, counter: bool) -> str:
    """A CSV cell: empty when missing; a step or whole epoch (``counter``) as an integer, else exact."""
    if math.isnan(value):
        return ""
    return str(int(value)) if counter and value.is_integer() else repr(value)
