"""Typed progress events the engine emits through a callback.

The GUI adapts these to Qt signals, the CLI prints them; both only read them. Events are frozen
dataclasses of plain values and NumPy arrays (no tensors), so they cross threads and processes safely.
A run's events carry every fact its log records (``wmstudio.run_recorder.RunRecorder`` is the one
subscriber that writes the log, and writes only what events carry): the app shows a run it watched
from its events and never reads that log back. Bulky facts (splits, trigger images, weights, a
trajectory point) are NumPy copies the subscribers only read.
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
    config_toml: str = ""  # the same config as TOML (what `wmstudio inspect` and a rerun read)
    run_name: str = ""


@dataclass(frozen=True)
class DataRecorded(Event):
    """The data a run uses: what the data set is (``info``: name, classes, normalisation, warnings)
    and the split (``splits``: image indices of owner, attacker and test, NumPy int arrays)."""

    info: dict[str, Any]
    splits: dict[str, Any]


@dataclass(frozen=True)
class ModelRecorded(Event):
    """Where the run's model came from (``wmstudio.preflight.model_record``)."""

    record: dict[str, Any]


@dataclass(frozen=True)
class TriggerSetRecorded(Event):
    """The run's trigger set, as its log records it (images and labels as stored, the data set's class names)."""

    scheme: str
    images: Any  # numpy array (N, C, H, W)
    labels: Any  # numpy array (N,)
    class_names: tuple[str, ...] = ()
    source_labels: Any = None  # numpy array (N,): the class each trigger image was made from (-1: none)
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    control_images: Any = None  # numpy array or None: the matched control (wmstudio.triggers.control)
    control_kind: str = ""


@dataclass(frozen=True)
class StageStarted(Event):
    stage: str
    epochs: int
    steps_per_epoch: int
    global_step: int
    layer_names: tuple[str, ...] = ()  # the columns of Metrics.layer_l2 / layer_cos
    drift_reference: str = ""  # what drift is measured from, as the log records it (RunLogWriter.begin_stage)
    order: int = 0  # the stage's place in the run (1 first)
    config: dict[str, Any] = field(default_factory=dict)  # the stage's settings as the log records them


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
    epoch_position: float = 0.0  # epochs into the stage after this step (epoch - 1 + step in epoch / steps per epoch)


@dataclass(frozen=True)
class Metrics(Event):
    """An evaluation row: test and trigger loss/accuracy, drift, p-value (``values``)."""

    stage: str
    epoch: float
    global_step: int
    values: dict[str, float]
    layer_l2: tuple[float, ...] = ()
    layer_cos: tuple[float, ...] = ()
    trajectory: Any = None  # numpy float32 (n_params,): the flat weights, where run.record_trajectory keeps them


@dataclass(frozen=True)
class CheckpointSaved(Event):
    stage: str
    location: str
    partial: bool = False  # the weights of a cancelled or failed stage
    weights: dict[str, Any] = field(default_factory=dict, repr=False)  # name -> numpy copy of the state dict


@dataclass(frozen=True)
class StageDetail(Event):
    """A finding or setting of a stage the log keeps as JSON beside it (``key``: the attribute, e.g.
    ``attack_json``, ``extraction_json``, ``rowback_json``, ``certified_json``)."""

    stage: str
    key: str
    value: Any


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
    # the landscape as stored when its points start (a wmstudio.landscape.store.Landscape, the subscriber's own
    # copy): its settings, axes, the models and trajectories projected onto it, the points a resume finds done
    landscape: Any = field(default=None, repr=False)


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
    result: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole result a log stores (finished)


EventCallback = Callable[[Event], Any]


def ignore(_event: Event) -> None:
    """The default callback: drop every event."""
