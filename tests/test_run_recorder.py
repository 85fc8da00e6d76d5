"""The run log is written from events alone: replaying a run's events into a fresh recorder rebuilds its log.

That is what "one record of each fact" means here: every fact the log holds arrived as an event the
app or the CLI was also given, so a watcher never has to read the log back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, quick_config

from wmstudio.config_io import load_config
from wmstudio.control import RunControl
from wmstudio.errors import RunLogError
from wmstudio.events import Event, Metrics, RunStarted
from wmstudio.pipeline import run_experiment
from wmstudio.run_recorder import RunRecorder
from wmstudio.runlog_reader import RunLogReader

TIMES = {"created", "started", "finished"}  # when it was written, not what was written


def _contents(path: Path) -> dict[str, object]:
    """Every attribute and dataset of a log, by its HDF5 path (write times left out)."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: h5py.HLObject) -> None:
            for k, v in obj.attrs.items():
                if k not in TIMES:
                    out[f"{name}@{k}"] = v
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        visit("/", f)
        f.visititems(visit)
    return out


def _replay(events: list[Event], out: Path) -> None:
    recorder = RunRecorder(out, "replayed")
    try:
        for e in events:
            recorder(e)
    finally:
        recorder.close()


def _same(a: dict[str, object], b: dict[str, object]) -> list[str]:
    differ = sorted(set(a) ^ set(b))
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=np.asarray(x).dtype.kind == "f"):
                differ.append(k)
        elif x != y and k != "/@device":
            differ.append(k)
    return differ


@pytest.mark.parametrize("sections", [
    # embed, an attack (attack_json), restore, the trajectory (curvature at stage ends: test_curvature.py,
    # and the recorder's part below)
    {"embed": {"epochs": 1}, "attack": {"kind": "prune"}, "restore": {"epochs": 1},
     "run": {"record_trajectory": True}, "model": {"options": {"width": 4}}, "trigger": {"size": 20}},
    # a model extraction (extraction_json), evaluated within its epoch
    {"embed": {"epochs": 1}, "finetune": {"enabled": False}, "restore": {"enabled": False},
     "extract": {"enabled": True, "epochs": 1, "eval_every_steps": 3}, "model": {"options": {"width": 4}},
     "trigger": {"size": 20}},
], ids=["embed-attack-restore", "extract"])
def test_replaying_a_runs_events_rebuilds_its_log(tmp_path: Path, one_thread: None, sections: dict) -> None:
    events: list[Event] = []
    cfg = load_config(data=quick_config(**sections))
    run_experiment(cfg, tmp_path / "run.h5", events.append)
    _replay(events, tmp_path / "replayed.h5")
    original, replayed = _contents(tmp_path / "run.h5"), _contents(tmp_path / "replayed.h5")
    assert any(k.startswith("stages/embed/weights/") for k in original)
    assert any(k.endswith("_json") and not k.startswith("/@") for k in original)  # a stage's findings
    assert _same(original, replayed) == []


def test_a_failed_write_is_not_told_to_the_watcher(tmp_path: Path, one_thread: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The log and the watcher hold the same facts: an evaluation the log could not take is not shown."""
    from wmstudio import runlog

    told: list[Event] = []
    real = runlog.RunLogWriter.append

    def full_in_finetune(self: runlog.RunLogWriter, stage: str, *a: object, **k: object) -> None:
        if stage == "finetune":
            raise RunLogError(f"{self.path}: the disk is full")
        real(self, stage, *a, **k)

    monkeypatch.setattr(runlog.RunLogWriter, "append", full_in_finetune)
    cfg = load_config(data=quick_config(embed={"epochs": 1}, model={"options": {"width": 4}}, trigger={"size": 20}))
    with pytest.raises(RunLogError, match="disk is full"):
        run_experiment(cfg, tmp_path / "run.h5", told.append, RunControl())
    assert isinstance(told[0], RunStarted)
    assert not [e for e in told if isinstance(e, Metrics) and e.stage == "finetune"]
    assert RunLogReader(tmp_path / "run.h5").status == "failed"


def test_curvature_results_of_a_stage_are_kept_together(tmp_path: Path) -> None:
    from wmstudio.curvature import job
    from wmstudio.events import CurvatureFinished, StageStarted

    recorder = RunRecorder(tmp_path / "run.h5", "cpu")
    try:
        for e in (RunStarted(str(tmp_path / "run.h5"), "cpu", ("embed",)), StageStarted("embed", 1, 1, 0, order=1),
                  CurvatureFinished("embed", "clean", "finished", 1.0, result={"eigenvalues": [2.0]}),
                  CurvatureFinished("embed", "trigger", "cancelled", 1.0),
                  CurvatureFinished("embed", "trigger", "finished", 1.0, result={"eigenvalues": [5.0]})):
            recorder(e)
    finally:
        recorder.close()
    assert job.read(tmp_path / "run.h5") == {"embed": {"clean": {"eigenvalues": [2.0]},
                                                       "trigger": {"eigenvalues": [5.0]}}}


def test_only_the_recorder_writes_a_running_log() -> None:
    """Stages emit; they never call the log writer (its other users write logs no run holds: a sweep
    marking a dead worker's log, curvature of a finished log)."""
    allowed = {"runlog.py", "run_recorder.py", "sweep/dispatch.py", "curvature/of_log.py"}
    methods = {"write_data", "write_trigger", "begin_stage", "append", "save_weights", "end_stage", "set_stage_json",
               "set_run_json", "set_status"}
    writers = set()
    for p in (ROOT / "wmstudio").rglob("*.py"):
        rel = p.relative_to(ROOT / "wmstudio").as_posix()
        for n in ast.walk(ast.parse(p.read_text())):
            named = isinstance(n, ast.Name) and n.id == "RunLogWriter"
            # s.log.append(...), self.writer.save_weights(...): a writer held under some name
            called = isinstance(n, ast.Attribute) and n.attr in methods and isinstance(n.value, ast.Attribute) \
                and n.value.attr in {"log", "writer"}
            if named or called:
                writers.add(rel)
    assert writers <= allowed, writers - allowed
