"""The run log as a subscriber: every fact a run's log holds is written here, from the event that carries it.

The stages only emit events (``wmstudio.events``); ``Session.emit`` hands each one to a
``RunRecorder`` before the app's or the CLI's callback sees it, so the log and what a watcher was
told are the same facts. A write that fails (a full disk) raises ``RunLogError`` from ``emit``, and the
event is not passed on: a watcher is never told of something the log lacks.

Training steps are buffered and committed with the next evaluation row, checkpoint or stage end (one
commit per evaluation, as before): a crash loses at most the steps since the last evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.curvature.spec import (
    ATTR as CURVATURE_ATTR,  # where a stage's curvature results are kept
)
from wmstudio.events import (
    CheckpointSaved,
    CurvatureFinished,
    DataRecorded,
    Event,
    Metrics,
    ModelRecorded,
    RunFinished,
    RunStarted,
    StageDetail,
    StageFinished,
    StageStarted,
    Step,
    TriggerSetRecorded,
)
from wmstudio.runlog import RunLogWriter
from wmstudio.status import Status


def weights_location(path: str | Path, stage: str) -> str:
    """Where a stage's weights are in its log (``CheckpointSaved.location``)."""
    return f"{path}:/stages/{stage}/weights"


def weights_of(state_dict: dict[str, Any]) -> dict[str, np.ndarray]:
    """A state dict as NumPy copies (an event's weights must not change when training goes on)."""
    return {k: v.detach().cpu().clone().numpy() for k, v in state_dict.items()}


class RunRecorder:
    """Writes one run's log from its events. ``RunStarted`` creates the log (refused where one exists,
    unless ``overwrite``) and takes its writer lock, held until ``close()``."""

    def __init__(self, path: str | Path, device: str, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.device = device
        self.overwrite = overwrite
        self.writer: RunLogWriter | None = None
        self._steps: dict[str, list[tuple[float, ...]]] = {}
        self._curvature: dict[str, dict[str, Any]] = {}
        self._write: dict[type[Event], Callable[[Any], None]] = {
            RunStarted: self._run_started, DataRecorded: self._data, ModelRecorded: self._model,
            TriggerSetRecorded: self._trigger, StageStarted: self._stage_started, Step: self._step,
            Metrics: self._metrics, CheckpointSaved: self._checkpoint, StageDetail: self._detail,
            StageFinished: self._stage_finished, CurvatureFinished: self._curvature_finished,
            RunFinished: self._run_finished,
        }

    def __call__(self, event: Event) -> None:
        write = self._write.get(type(event))
        if write is not None:
            write(event)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    @property
    def log(self) -> RunLogWriter:
        if self.writer is None:
            raise RuntimeError(f"{self.path}: the run has not started (no RunStarted event yet)")
        return self.writer

    # ------------------------------------------------------------ one method per event
    def _run_started(self, e: RunStarted) -> None:
        self.writer = RunLogWriter.create(self.path, e.config_toml, json.dumps(e.config), e.run_name, e.device,
                                          overwrite=self.overwrite)

    def _data(self, e: DataRecorded) -> None:
        self.log.write_data(e.info, e.splits)

    def _model(self, e: ModelRecorded) -> None:
        self.log.set_run_json("model_json", e.record)

    def _trigger(self, e: TriggerSetRecorded) -> None:
        source = e.source_labels if e.source_labels is not None else np.full(len(e.labels), -1, dtype=np.int64)
        self.log.write_trigger(e.images, e.labels, source, e.scheme, e.seed, e.params, e.control_images,
                               e.control_kind)

    def _stage_started(self, e: StageStarted) -> None:
        self._steps[e.stage] = []
        self._curvature.pop(e.stage, None)
        self.log.begin_stage(e.stage, e.order, e.config, e.epochs, e.steps_per_epoch, list(e.layer_names),
                             e.drift_reference)

    def _step(self, e: Step) -> None:
        self._steps.setdefault(e.stage, []).append((e.global_step, e.epoch_position, e.loss, e.lr))

    def _flush(self, stage: str) -> list[tuple[float, ...]]:
        rows = self._steps.get(stage, [])
        self._steps[stage] = []
        return rows

    def _metrics(self, e: Metrics) -> None:
        rows = self._flush(e.stage)
        self.log.append(e.stage, rows, e.values, list(e.layer_l2), list(e.layer_cos), e.trajectory)

    def _checkpoint(self, e: CheckpointSaved) -> None:
        rows = self._flush(e.stage)
        if rows:
            self.log.append(e.stage, rows)
        self.log.save_weights(e.stage, e.weights, partial=e.partial)

    def _detail(self, e: StageDetail) -> None:
        self.log.set_stage_json(e.stage, e.key, e.value)

    def _stage_finished(self, e: StageFinished) -> None:
        rows = self._flush(e.stage)
        if rows:
            self.log.append(e.stage, rows)
        self.log.end_stage(e.stage, e.status, e.message)

    def _curvature_finished(self, e: CurvatureFinished) -> None:
        if e.status != Status.FINISHED or not e.result:
            return
        held = self._curvature.setdefault(e.stage, {})
        held[e.key] = e.result
        self.log.set_stage_json(e.stage, CURVATURE_ATTR, held)

    def _run_finished(self, e: RunFinished) -> None:
        self.log.set_status(e.status, e.message)
