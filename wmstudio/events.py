"""Typed progress events the engine emits through a callback.

The GUI adapts these to Qt signals, the CLI prints them; both only read them. Events are frozen
dataclasses of plain values and NumPy arrays (no tensors), so they cross threads and processes safely.
A run's events carry what the app shows of it (its config, its trigger set, which stages saved
weights), so the app never reads back the log of a run it watched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """Base class of every engine event."""


@dataclass(frozen=True)
class RunStarted(Event):
    log_path: str
    device: str
    stages: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)  # the config the log records (ExperimentConfig.to_dict)


@dataclass(frozen=True)
class TriggerSetRecorded(Event):
    """The run's trigger set, as its log records it (images and labels as stored, the data set's class names)."""

    scheme: str
    images: Any  # numpy array (N, C, H, W)
    labels: Any  # numpy array (N,)
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageStarted(Event):
    stage: str
    epochs: int
    steps_per_epoch: int
    global_step: int
    layer_names: tuple[str, ...] = ()  # the columns of Metrics.layer_l2 / layer_cos
    drift_reference: str = ""  # what drift is measured from, as the log records it (RunLogWriter.begin_stage)


@dataclass(frozen=True)
class Phase(Event):
    """Work of a stage before its training starts (Neural Cleanse reversing each class's trigger):
    ``done`` of ``total`` units of ``what``, emitted as it goes."""

    stage: str
    what: str
    done: int
    total: int


@dataclass(frozen=True)
class Step(Event):
    """One optimiser step. ``global_step`` counts across all stages of the run."""

    stage: str
    epoch: int
    step: int
    global_step: int
    loss: float
    lr: float
    total_steps: int


@dataclass(frozen=True)
class Metrics(Event):
    """An evaluation row: test and trigger loss/accuracy, drift, p-value (``values``)."""

    stage: str
    epoch: float
    global_step: int
    values: dict[str, float]
    layer_l2: tuple[float, ...] = ()
    layer_cos: tuple[float, ...] = ()


@dataclass(frozen=True)
class CheckpointSaved(Event):
    stage: str
    location: str
    partial: bool = False  # the weights of a cancelled or failed stage


@dataclass(frozen=True)
class StageFinished(Event):
    stage: str
    status: str  # a Status: FINISHED | STOPPED_EARLY | CANCELLED | FAILED
    final: dict[str, float] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the event's natural name
    message: str


@dataclass(frozen=True)
class Note(Event):
    """A finding worth a line of its own (which class Neural Cleanse flagged)."""

    stage: str
    message: str


@dataclass(frozen=True)
class Error(Event):
    message: str
    stage: str = ""


@dataclass(frozen=True)
class RunFinished(Event):
    log_path: str
    status: str  # a Status: FINISHED | CANCELLED | FAILED
    message: str = ""


@dataclass(frozen=True)
class LandscapeStarted(Event):
    log_path: str
    name: str
    kind: str
    shape: tuple[int, ...]  # (ny, nx) or (n,)
    done: int  # points already computed (a resumed surface)


@dataclass(frozen=True)
class LandscapePoints(Event):
    """Newly computed points: flat indices into the grid and their metrics (same order)."""

    name: str
    level: int
    indices: tuple[int, ...]
    values: dict[str, tuple[float, ...]]
    done: int
    total: int


@dataclass(frozen=True)
class LandscapeEstimate(Event):
    """The time and memory a landscape's remaining points will take, from one timed pass of the model."""

    name: str
    points: int  # left to compute
    point_seconds: float
    seconds: float
    memory_bytes: int


@dataclass(frozen=True)
class LandscapeFinished(Event):
    name: str
    status: str  # finished | cancelled | failed
    seconds: float
    message: str = ""


@dataclass(frozen=True)
class CurveTrainingStarted(Event):
    """A connecting curve's bend is about to be trained: the estimate, from one timed training step."""

    name: str
    steps: int  # training steps in all
    step_seconds: float
    seconds: float  # the training's estimated time (the points' evaluation is estimated after it)
    memory_bytes: int


@dataclass(frozen=True)
class CurveTrainingProgress(Event):
    """Steps of a curve's bend training done so far, and the mean training loss of the current epoch."""

    name: str
    epoch: int
    done: int
    total: int
    loss: float


@dataclass(frozen=True)
class CurvatureStarted(Event):
    """A curvature job starts: its estimate (from a quick timing of the model) comes first."""

    stage: str
    key: str  # the loss, and the layer after '@' (wmstudio.curvature.job.CurvatureSpec.key)
    products: int  # Hessian-vector products at most
    seconds: float  # estimated
    memory_bytes: int  # estimated


@dataclass(frozen=True)
class CurvatureProgress(Event):
    stage: str
    key: str
    phase: str  # eigenvalues | trace | density
    done: int  # products so far, all phases
    total: int  # products at most


@dataclass(frozen=True)
class CurvatureFinished(Event):
    stage: str
    key: str
    status: str  # finished | cancelled | failed
    seconds: float
    values: dict[str, float] = field(default_factory=dict)  # top_eigenvalue, trace
    message: str = ""


EventCallback = Callable[[Event], Any]


def ignore(_event: Event) -> None:
    """The default callback: drop every event."""
