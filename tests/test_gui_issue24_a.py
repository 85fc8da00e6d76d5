"""Issue 24, items 1, 7, 8, 9, 11 and 12 (the app's side): tests that failed before their fixes."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("stop", [SystemExit, SystemExit(4), KeyboardInterrupt])
def test_a_job_that_raises_a_base_exception_ends_as_failed(qtbot, stop) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QWidget

    from wmstudio.gui.jobs import JobRunner

    def job(_callback, _control):  # noqa: ANN001, ANN202
        raise stop

    owner = QWidget()
    qtbot.addWidget(owner)
    runner = JobRunner(owner)
    with qtbot.waitSignal(runner.failed, timeout=10_000) as got:
        runner.start("run", job)
    kind, message, _details, user_error = got.args
    assert kind == "run" and not runner.running and not user_error
    assert ("sys.exit(" in message) if stop is not KeyboardInterrupt else "KeyboardInterrupt" in message
    qtbot.wait(100)  # the ended thread's own signal comes after: it says nothing more
    assert not runner.running


def test_the_drift_title_names_the_reference_each_stage_recorded(qtbot, tmp_path) -> None:  # noqa: ANN001
    """Item 8: a stage run alone measures drift from its own start, and the title says so (not "the
    watermarked model"); the stages of one run keep their references."""
    from conftest import quick_config

    from wmstudio.config import load_config
    from wmstudio.gui.metrics_view import DriftView
    from wmstudio.gui.series import RunSeries
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog import RunLogReader

    tiny = {"embed": {"epochs": 1}, "finetune": {"epochs": 1}, "restore": {"epochs": 1}}
    both = tmp_path / "both.h5"
    run_experiment(load_config(data=quick_config(**tiny)), both, stages=("embed", "finetune"))
    alone = tmp_path / "restore_alone.h5"
    run_experiment(load_config(data=quick_config(**tiny, model={"checkpoint": f"{both}:finetune"})), alone,
                   stages=("restore",))
    assert [s.drift_reference for s in RunLogReader(alone).stages()] == ["restore_start"]
    assert {s.name: s.drift_reference for s in RunLogReader(both).stages()} == {
        "embed": "initial", "finetune": "watermarked"}
    view = DriftView()
    qtbot.addWidget(view)
    view.show_log(RunSeries.from_log(alone))
    assert view.l2.titleLabel.text == "Weight drift from its own start"
    view.clear()
    assert "the watermarked model" not in view.l2.titleLabel.text
    view.show_log(RunSeries.from_log(both))
    assert view.l2.titleLabel.text == ("Weight drift from: embed: the run's initial weights; "
                                       "fine-tune (attack): the watermarked model")


def test_a_followed_log_shows_finished_once_its_writer_ends(qtbot, tmp_path) -> None:  # noqa: ANN001
    """Item 12: the run bar follows a log another process writes, and says so when the writer ends."""
    from gui_helpers import make_window

    from wmstudio.gui.series import LogRows, RunSeries, StageSpan

    win = make_window(qtbot, tmp_path)
    path = str(tmp_path / "other.h5")
    series = RunSeries(label="other", log_path=path, log_status="running", stages=[StageSpan("embed", 0, 10)])
    assert win.ctl.adopt(series) and win.ctl.following
    win.run_panel.show_log(series, "other.h5")
    assert win.run_panel.progress_label.text() == "following: other.h5 (running, embed)"
    assert win.run_panel.progress.maximum() == 0  # busy, not a bar stuck at 0%
    win._log_grew(LogRows(path, "other", "cpu", "finished", []))
    assert not win.ctl.following
    assert win.run_panel.progress_label.text() == "opened: other.h5 (finished)"
    assert win.run_panel.progress.value() == win.run_panel.progress.maximum() == 1
