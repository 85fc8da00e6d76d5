"""A run log read from another folder than its run's: the config's relative data paths are read against the
folder the run was started in (recorded in the log), so a landscape, an export or the app started elsewhere
finds the data the run read (a CIFAR-10 log opened from another folder named ``../shared/data/...``, which
did not exist there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wmstudio.config_io import anchor_paths


@pytest.fixture()
def relative_run(tmp_path, monkeypatch) -> Path:
    """A run started in tmp/project with data.root = "imgs" (relative), then the process moves elsewhere."""
    from conftest import image_folder, quick_config

    from wmstudio.config_io import load_config
    from wmstudio.pipeline import run_experiment

    project = tmp_path / "project"
    image_folder(project / "imgs", classes=3, train=24, test=8)
    monkeypatch.chdir(project)
    cfg = load_config(data=quick_config(data={"dataset": "imagefolder", "root": "imgs", "attacker_size": 12},
                                        run={"record_trajectory": False, "eval_batch_size": 64},
                                        model={"options": {"width": 4}}, trigger={"size": 6},
                                        embed={"epochs": 1, "batch_size": 16}, finetune={"enabled": False},
                                        restore={"enabled": False}))
    log = tmp_path / "logs" / "run.h5"
    log.parent.mkdir()
    run_experiment(cfg, log)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return log


def test_a_log_read_from_another_folder_finds_its_runs_data(relative_run, tmp_path) -> None:
    from wmstudio.gui.log_reading import read_snapshot
    from wmstudio.landscape.context import load_context
    from wmstudio.runlog_reader import RunLogReader

    reader = RunLogReader(relative_run)
    assert reader.working_dir() == str(tmp_path / "project")
    assert '"root": "imgs"' in reader.config_json  # the config is recorded as written ...
    ctx = load_context(relative_run)  # ... and read against the folder the run was started in
    assert ctx.cfg.data.root == str(tmp_path / "project" / "imgs")
    assert len(ctx.test.labels) > 0
    # the app's form takes the opened log's settings with the same paths (a stage run from it finds the data)
    assert read_snapshot(relative_run).config["data"]["root"] == str(tmp_path / "project" / "imgs")


def test_paths_are_anchored_only_where_they_exist_there_and_only_when_relative(tmp_path, monkeypatch) -> None:
    (tmp_path / "data").mkdir()
    cfg = {"data": {"root": "data", "cache_dir": "cache"}, "trigger": {"source": {"root": "data", "name": "x"}},
           "run": {"name": "data"}, "model": {"options": {"root": "data"}}}
    got = anchor_paths(cfg, str(tmp_path))
    assert got["data"]["root"] == got["trigger"]["source"]["root"] == str(tmp_path / "data")
    assert got["model"]["options"]["root"] == "data"  # a model's own option, not a data path
    assert got["data"]["cache_dir"] == "cache"  # not there: left as written, so the error names it
    assert got["run"]["name"] == "data"  # not a path
    assert anchor_paths(cfg, "") == cfg  # a log written before the folder was recorded
    absolute = {"data": {"root": str(tmp_path / "elsewhere")}}
    assert anchor_paths(absolute, str(tmp_path)) == absolute

    def denied(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", denied)  # a folder the log names that cannot be looked into
    assert anchor_paths({"data": {"root": "data"}}, str(tmp_path)) == {"data": {"root": "data"}}  # left as written
