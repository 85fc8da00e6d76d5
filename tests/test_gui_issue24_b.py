"""Issue 24, what was left (the app's side): tests that failed before their fixes."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from gui_helpers import make_window, settle, synthetic_run

from wmstudio.events import StageStarted

REFERENCES = {"embed": "initial", "finetune": "watermarked", "restore": "watermarked"}


def show_run_with_references(win) -> None:  # noqa: ANN001
    """A synthetic three-stage run whose stages record what their drift is measured from, as real logs do."""
    import dataclasses

    for e in synthetic_run(1):
        if isinstance(e, StageStarted):
            e = dataclasses.replace(e, drift_reference=REFERENCES.get(e.stage, ""))
        win.ctl.series.apply(e)
    win.tabs.show_run(win.ctl.series)


def _title_clear_of_legend(plot: pg.PlotItem) -> None:
    """The plot's title text does not run under its legend (where the legend has entries)."""
    legend = plot.legend if plot.legend is not None else getattr(plot, "entry_legend", None)
    if legend is None or not legend.isVisible() or not legend.items or not plot.titleLabel.isVisible():
        return
    title = plot.titleLabel.item.sceneBoundingRect()
    assert not title.intersects(legend.sceneBoundingRect()), (plot.titleLabel.text, title, legend.sceneBoundingRect())


def test_the_drift_plots_titles_are_not_under_their_legends(qtbot, tmp_path) -> None:
    """The L2 plot's title names each stage's reference (long); its legend sat on top of it."""
    win = make_window(qtbot, tmp_path)
    win.resize(1400, 900)
    win.show()
    show_run_with_references(win)
    view = win.tabs.drift_view
    win.tabs.setCurrentWidget(view)
    settle(qtbot, view)
    assert len(view.l2.titleLabel.text) > 80  # "Weight drift from: embed: ...; fine-tune ...; restore ..."
    for plot in view.plots.values():
        _title_clear_of_legend(plot)


def test_no_collapsed_mark_at_a_stage_s_starting_point(qtbot) -> None:
    """The demo's step 0 evaluates an untrained model (near chance, so flagged by its row): the stage's
    name above the plots said "collapsed" until the first epoch. Collapse is judged once the stage has
    trained; a model still collapsed after an epoch is marked."""
    from wmstudio.events import Metrics, RunStarted
    from wmstudio.gui.metrics_view import MetricsView
    from wmstudio.gui.series import RunSeries
    from wmstudio.gui.series_view import COLLAPSED_MARK, stage_title

    def row(epoch: float, collapsed: float) -> dict[str, float]:
        return {"epoch": epoch, "test_acc": 0.1, "trigger_acc": 0.1, "test_loss": 2.3, "trigger_loss": 2.3,
                "p_value": 0.5, "majority_share": 0.9, "collapsed": collapsed}

    view = MetricsView()
    qtbot.addWidget(view)
    series = RunSeries()
    series.apply(RunStarted(log_path="", device="cpu", stages=("embed",)))
    series.apply(StageStarted(stage="embed", global_step=0, epochs=2, steps_per_epoch=5, layer_names=("fc",)))
    series.apply(Metrics(stage="embed", epoch=0.0, global_step=0, values=row(0.0, 1.0)))
    view.show_series(series)
    assert COLLAPSED_MARK not in stage_title(series, 0)
    assert all(COLLAPSED_MARK not in name for _, name in view.marks[0].axis.stages)
    assert "YES" not in view._describe(view.acc, 0.0, 0.5)[1]
    series.apply(Metrics(stage="embed", epoch=1.0, global_step=5, values=row(1.0, 1.0)))
    view.show_series(series)
    assert any(COLLAPSED_MARK in name for _, name in view.marks[0].axis.stages)
    assert "YES" in view._describe(view.acc, 5.0, 0.5)[1]


def test_the_p_value_of_a_collapsed_model_is_marked_and_keyed(qtbot) -> None:
    """A collapsed model (one class for most images) gives the trigger labels to every image: its binomial
    p-value is tiny and read alone it claimed a watermark. Its point on the p-value plot gets a cross, the
    legend says what the cross means, and the read-out says "collapsed YES"."""
    from wmstudio.events import Metrics, RunStarted
    from wmstudio.gui.metrics_view import COLLAPSED_KEY, MetricsView
    from wmstudio.gui.series import RunSeries

    def row(epoch: float, p: float, collapsed: float) -> dict[str, float]:
        return {"epoch": epoch, "test_acc": 0.1, "trigger_acc": 1.0, "test_loss": 2.3, "trigger_loss": 0.1,
                "p_value": p, "majority_share": 0.95, "collapsed": collapsed}

    def keys(view: MetricsView) -> list[str]:
        return [label.text for _sample, label in view.pval.legend.items]

    view = MetricsView()
    qtbot.addWidget(view)
    series = RunSeries()
    series.apply(RunStarted(log_path="", device="cpu", stages=("embed",)))
    series.apply(StageStarted(stage="embed", global_step=0, epochs=3, steps_per_epoch=5, layer_names=("fc",)))
    series.apply(Metrics(stage="embed", epoch=0.0, global_step=0, values=row(0.0, 0.5, 1.0)))  # a starting point
    series.apply(Metrics(stage="embed", epoch=1.0, global_step=5, values=row(1.0, 1e-40, 0.0)))
    view.show_series(series)
    x, _ = view.curves["p_collapsed"].getData()
    assert x is None or len(x) == 0  # neither the starting point nor a sound model is crossed
    series.apply(Metrics(stage="embed", epoch=2.0, global_step=10, values=row(2.0, 1e-90, 1.0)))
    view.show_series(series)
    x, y = view.curves["p_collapsed"].getOriginalDataset()
    assert list(x) == [10] and y[0] == pytest.approx(1e-90)
    assert COLLAPSED_KEY in keys(view)
    assert "YES" in view._describe(view.pval, 10.0, -90)[1]  # the p-value plot's read-out says it too
