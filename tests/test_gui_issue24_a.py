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


def _landscape_view(qtbot):  # noqa: ANN001, ANN202
    from wmstudio.gui.landscape_view import LandscapeView

    view = LandscapeView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_a_filling_landscape_leaves_missing_cells_transparent_and_says_when_it_stopped(qtbot) -> None:  # noqa: ANN001
    """Item 11: cells not computed are drawn as missing (no copied colours); after Stop the title (which
    exports carry) says stopped and how many points it holds."""
    from gui_helpers import fake_landscape

    from wmstudio.events import LandscapeFinished

    view = _landscape_view(qtbot)
    ls = fake_landscape("plane", n=9, status="running", done=False)
    ls.done[:3] = True  # the first three rows
    view.set_computing(True)
    view.show_landscape(ls)
    view.image.render()  # the picture Qt paints (built at the first paint otherwise)
    img = view.image.qimage
    assert img.pixelColor(4, 1).alpha() == 255 and img.pixelColor(4, 6).alpha() == 0  # (x, row)
    assert view.map.titleLabel.text.endswith("(filling in)")
    view.apply_events([LandscapeFinished(ls.name, "cancelled", 1.0)])
    view.set_computing(False)
    assert view.map.titleLabel.text.endswith("(stopped: 27/81 points)")
    ls.status = "running"  # opened from a log whose computation never ended (no job of this app computes it)
    view.redraw()
    assert view.map.titleLabel.text.endswith("(partial: 27/81 points)")


def test_a_1d_path_or_no_landscape_clears_the_maps_axes_and_colour_bar(qtbot) -> None:  # noqa: ANN001
    from gui_helpers import fake_landscape

    view = _landscape_view(qtbot)
    pca = fake_landscape("pca", n=9)
    pca.attrs.update({"explained_variance": [0.7, 0.2]})
    for after in (lambda: view.show_landscape(fake_landscape("line", n=8)), view.clear):
        view.show_landscape(pca)
        assert view.map.getAxis("bottom").labelText.endswith("PC 1 (70.0% of variance)") and view.colorbar.isVisible()
        after()
        for side in ("bottom", "left"):
            assert not view.map.getAxis(side).labelText and not view.map.getAxis(side).label.isVisible()
        assert not view.colorbar.isVisible()
