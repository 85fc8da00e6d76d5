"""Issue 24, what was left (the app's side): tests that failed before their fixes."""

from __future__ import annotations

import pyqtgraph as pg
from gui_helpers import make_window, synthetic_run

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
    qtbot.wait(200)
    assert len(view.l2.titleLabel.text) > 80  # "Weight drift from: embed: ...; fine-tune ...; restore ..."
    for plot in view.plots.values():
        _title_clear_of_legend(plot)
