"""The sharpness (Hessian curvature) of a run's stage-end models in the Metrics tab (issue 26, must-show 8):
held by the run's series live from its events and read from its log alike, plotted below the p-value only
while the shown run holds curvature."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from wmstudio.events import CurvatureFinished, Event
from wmstudio.gui.series import CurvaturePoint, RunSeries


@pytest.fixture(scope="module")
def curvature_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """A small digits run with run.curvature = stage_ends (seconds), and the events it emitted."""
    from conftest import quick_config

    from wmstudio.config_io import load_config
    from wmstudio.pipeline import run_experiment

    cfg = load_config(data=quick_config(run={"curvature": "stage_ends", "curvature_probes": 3, "curvature_images": 100,
                                             "record_trajectory": False}, model={"options": {"width": 4}},
                                        trigger={"size": 20}, embed={"epochs": 2}, finetune={"epochs": 1},
                                        restore={"epochs": 1}))
    out = tmp_path_factory.mktemp("curvature_run") / "run.h5"
    events: list[Event] = []
    run_experiment(cfg, out, events.append)
    return out, events


def test_the_series_holds_the_curvature_of_every_stage_end_live_and_from_the_log(curvature_run) -> None:
    from wmstudio.curvature import job

    path, events = curvature_run
    live = RunSeries()
    for e in events:
        live.apply(e)
    read = RunSeries.from_log(path)
    stored = job.read(path)
    assert [s.name for s in read.stages] == ["embed", "finetune", "restore"]
    assert len(read.curvature) == 6 and {p.key for p in read.curvature} == {"clean", "trigger"}
    assert sorted(live.curvature, key=lambda p: (p.stage, p.key)) == sorted(read.curvature, key=lambda p: (p.stage, p.key))
    for key in ("clean", "trigger"):
        x, top = read.curvature_column(key)
        _, trace = read.curvature_column(key, "trace")
        # one point a stage, at the stage's last step: the model it measured
        assert list(x) == [float(s.end_step) for s in read.stages]
        assert list(top) == [stored[s.name][key]["eigenvalues"][0] for s in read.stages]
        assert list(trace) == [stored[s.name][key]["trace"] for s in read.stages]
        assert np.all(top > 0)


def test_a_failed_or_cancelled_measurement_adds_no_point_and_a_new_one_replaces_the_old() -> None:
    from wmstudio.events import StageStarted

    s = RunSeries()
    s.apply(StageStarted("embed", epochs=2, steps_per_epoch=5, global_step=0))
    s.apply(CurvatureFinished("embed", "clean", "cancelled", 1.0))
    s.apply(CurvatureFinished("embed", "clean", "failed", 1.0, message="out of memory"))
    assert s.curvature == []
    s.apply(CurvatureFinished("embed", "clean", "finished", 1.0, result={"eigenvalues": [5.0], "trace": 9.0}))
    s.apply(CurvatureFinished("embed", "clean", "finished", 1.0, result={"eigenvalues": [6.0]}))
    assert len(s.curvature) == 1 and s.curvature[0].top_eigenvalue == 6.0 and math.isnan(s.curvature[0].trace)
    # a stored result is someone's data: a value that is not a number reads as nan, not as an error
    crafted = CurvaturePoint.of(0, "clean", {"eigenvalues": [10 ** 400], "trace": True})
    assert math.isnan(crafted.top_eigenvalue) and math.isnan(crafted.trace)
    assert math.isnan(CurvaturePoint.of(0, "clean", {"eigenvalues": ["x"]}).top_eigenvalue)


def test_the_sharpness_plot_is_in_the_stack_only_while_the_run_holds_curvature(qtbot, curvature_run, demo_run) -> None:
    from wmstudio.gui.metrics_view import MetricsView
    from wmstudio.gui.series_view import MIN_ROW_PX

    path, _ = curvature_run
    view = MetricsView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    assert "sharpness" not in view.plots and not view.sharp.isVisible()
    assert view.layout_widget.minimumHeight() == 3 * MIN_ROW_PX

    series = RunSeries.from_log(path)
    view.show_log(series)
    assert "sharpness" in view.plots and view.sharp.isVisible()
    assert not view.pval.getAxis("bottom").label.isVisible()  # the step axis is named once, under the last plot
    assert view.layout_widget.minimumHeight() == 4 * MIN_ROW_PX
    assert view.sharp.scene() is view.layout_widget.scene()
    shown = []
    for key in ("clean", "trigger"):
        for value in ("top_eigenvalue", "trace"):
            x, y = view.curves[f"{key}.{value}"].getOriginalDataset()
            want_x, want_y = series.curvature_column(key, value)
            assert np.array_equal(x, want_x) and np.allclose(y, want_y)
            shown.extend(y)
    # decades while every value is positive (a trace estimate of a barely trained model can be negative)
    assert view.sharp.ctrl.logYCheck.isChecked() == all(v > 0 for v in shown)
    # the read-out at a stage end names the curvature measured there
    step, text = view._describe(view.sharp, float(series.stages[0].end_step), 0.0)
    assert step == series.stages[0].end_step and "top eigenvalue (clean loss)" in text
    assert "trace (trigger loss)" in text

    # a run without curvature: the plot leaves the stack (no empty plot), the p-value takes the step axis' title
    view.clear()
    view.show_log(RunSeries.from_log(demo_run))
    assert "sharpness" not in view.plots and not view.sharp.isVisible()
    assert view.pval.getAxis("bottom").label.isVisible() and view.pval.getAxis("bottom").labelText == "global step"
    assert view.layout_widget.minimumHeight() == 3 * MIN_ROW_PX


def test_a_negative_trace_is_drawn_on_a_linear_axis_not_dropped(qtbot, curvature_run) -> None:
    from wmstudio.events import StageStarted, Step
    from wmstudio.gui.metrics_view import MetricsView

    view = MetricsView()
    qtbot.addWidget(view)
    s = RunSeries()
    s.apply(StageStarted("embed", epochs=1, steps_per_epoch=4, global_step=0))
    s.apply(Step("embed", epoch=1, step=4, global_step=4, loss=1.0, lr=0.1, total_steps=4))
    s.apply(CurvatureFinished("embed", "trigger", "finished", 1.0, result={"eigenvalues": [3.0], "trace": -2.0}))
    view.show_series(s)
    assert not view.sharp.ctrl.logYCheck.isChecked()
    assert list(view.curves["trigger.trace"].getOriginalDataset()[1]) == [-2.0]


def test_a_run_with_per_layer_curvature_alone_shows_no_empty_sharpness_plot(qtbot) -> None:
    """Per-layer results are not drawn, so not held: a crafted log may hold any number of them."""
    from wmstudio.events import StageStarted
    from wmstudio.gui.metrics_view import MetricsView

    view = MetricsView()
    qtbot.addWidget(view)
    s = RunSeries()
    s.apply(StageStarted("embed", epochs=1, steps_per_epoch=4, global_step=0))
    s.apply(CurvatureFinished("embed", "clean@fc", "finished", 1.0, result={"eigenvalues": [3.0]}))
    view.show_series(s)
    assert s.curvature == [] and "sharpness" not in view.plots


def test_a_log_whose_curvature_is_not_an_object_of_results_is_refused_by_name(tmp_path, curvature_run) -> None:
    import shutil

    from wmstudio.errors import RunLogError
    from wmstudio.runlog import RunLogWriter
    from wmstudio.runlog_reader import RunLogReader

    path = tmp_path / "bad.h5"
    shutil.copy(curvature_run[0], path)
    RunLogWriter(path).set_stage_json("finetune", "curvature_json", [1, 2])
    with pytest.raises(RunLogError, match=r"/stages/finetune curvature_json: expected a JSON object of results"):
        RunLogReader(path).stages()
    # an entry that is no result is left out; the log and its other results stay readable
    RunLogWriter(path).set_stage_json("finetune", "curvature_json", {"clean": [1, 2], "trigger": {"eigenvalues": [2.0]}})
    stage = next(s for s in RunLogReader(path).stages() if s.name == "finetune")
    assert stage.curvature == {"trigger": {"eigenvalues": [2.0]}}


def test_a_stage_ends_curvature_shows_its_products_in_the_progress_and_the_overall_share_never_falls(curvature_run
                                                                                                     ) -> None:
    from wmstudio.events import CurvatureProgress
    from wmstudio.progress import ProgressTracker

    tracker = ProgressTracker()
    overall, lines, seen = 0.0, [], []
    from wmstudio.events import RunFinished

    for e in curvature_run[1]:
        line = tracker.update(e)
        lines.append(line or "")
        assert tracker.state.overall >= overall - 1e-9
        assert isinstance(e, RunFinished) or tracker.state.overall < 1.0  # a full bar only once the run ended
        overall = tracker.state.overall
        if isinstance(e, CurvatureProgress):
            seen.append(tracker.status_line())
    assert any("curvature clean: estimate: at most" in ln for ln in lines)
    # Lanczos stops once converged: the products are an upper bound, the time an estimate from it: said so
    assert seen and all("curvature of the" in t and "Hessian-vector products" in t and "(at most " in t
                        and "up to " in t.rsplit("·", 1)[-1] for t in seen)
    assert any(t.startswith("restore · curvature of the trigger loss") for t in seen)
    assert tracker.state.overall == 1.0


def test_the_sharpness_plot_takes_a_theme_switched_while_it_was_out_of_the_stack(qtbot, curvature_run) -> None:
    import pyqtgraph as pg

    from wmstudio.gui.metrics_view import MetricsView
    from wmstudio.gui.plot_theme import restyle_plots

    view = MetricsView()
    qtbot.addWidget(view)
    before = pg.getConfigOption("foreground")
    try:
        pg.setConfigOption("foreground", "#fafafa")  # what a switch to the dark theme sets, then restyles
        restyle_plots(view)
        view.show_log(RunSeries.from_log(curvature_run[0]))
        assert view.sharp.getAxis("left").pen().color().name() == "#fafafa"
    finally:
        pg.setConfigOption("foreground", before)
