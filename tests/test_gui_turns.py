"""Opening a long run's log never blocks the UI thread with all of its drawing at once: the work is
split into steps, one turn of the event loop each (``wmstudio.gui.turns``); a note over the plots
moves nothing when shown or hidden; long curves lose their per-point dots."""

from __future__ import annotations

import shutil

import numpy as np
from gui_helpers import curve_data, make_window, open_log
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from wmstudio.gui.turns import Turns


def test_turns_run_one_step_per_turn_and_a_new_sequence_drops_the_old(qtbot) -> None:
    done: list[str] = []
    ticks: list[int] = []
    turns = Turns()
    turns.run([lambda: done.append("a1"), lambda: done.append("a2"), lambda: done.append("a3")])
    assert done == ["a1"] and turns.pending == 2  # the first step at once, the rest later
    QTimer.singleShot(0, lambda: ticks.append(len(done)))  # another timer gets its turn between the steps
    qtbot.waitUntil(lambda: turns.pending == 0)
    assert done == ["a1", "a2", "a3"] and ticks and ticks[0] < 3
    done.clear()
    turns.run([lambda: done.append("b1"), lambda: done.append("b2")])
    turns.run([lambda: done.append("c1"), lambda: done.append("c2")])  # b2 is dropped
    qtbot.waitUntil(lambda: turns.pending == 0)
    turns.run([lambda: done.append("d1"), lambda: done.append("d2")])
    turns.cancel()
    QApplication.processEvents()
    assert done == ["b1", "c1", "c2", "d1"]


def test_a_failing_step_does_not_stop_the_steps_after_it(qtbot, monkeypatch) -> None:
    done: list[str] = []
    monkeypatch.setattr("sys.excepthook", lambda *a: done.append("reported"))
    turns = Turns()

    def boom() -> None:
        raise RuntimeError("step failed")

    turns.run([lambda: done.append("1"), boom, lambda: done.append("3")])
    qtbot.waitUntil(lambda: "3" in done)
    assert done[0] == "1" and done[-1] == "3"


def test_opening_a_log_draws_the_visible_plot_first_and_the_rest_in_later_turns(qtbot, tmp_path, demo_run) -> None:
    win = make_window(qtbot, tmp_path)
    win.resize(1400, 900)
    win.show()
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    first, second = shutil.copy(demo_run, tmp_path / "first.h5"), shutil.copy(demo_run, tmp_path / "second.h5")
    seen: list[tuple[int, int]] = []  # (points in the metrics view, in the drift view) when the window's slot returned
    win.loader.opened.connect(lambda _snap: seen.append(
        (len(curve_data(win.tabs.metrics_view.curves["test_acc"])[0]),
         len(curve_data(win.tabs.drift_view.curves["drift_l2"])[0]))))
    open_log(qtbot, win, first)  # log_opened comes after the last step: everything is shown then
    n = len(win.ctl.series.eval_rows)
    assert seen == [(n, 0)]  # the visible metrics view is drawn at once, the hidden drift view in a later turn
    assert len(curve_data(win.tabs.drift_view.curves["drift_l2"])[0]) == n
    assert win.tabs.compare_view.runs and not win.busy and win.windowTitle()
    # two logs opened in quick succession: the second one's steps replace the first one's
    win.tabs.setCurrentWidget(win.tabs.drift_view)
    with qtbot.waitSignal(win.log_opened, timeout=60_000) as blocker:
        win.open_log(first)
        win.open_log(second)
    qtbot.waitUntil(lambda: not win.busy, timeout=60_000)
    assert win.ctl.log_path.name in ("first.h5", "second.h5") and win.tabs.log_path == win.ctl.log_path
    assert blocker.args[0].name == win.ctl.log_path.name
    np.testing.assert_array_equal(curve_data(win.tabs.metrics_view.curves["test_acc"])[0],
                                  [r["global_step"] for r in win.ctl.series.eval_rows])


def test_the_empty_note_lies_over_the_plots_and_moves_nothing(qtbot) -> None:
    from wmstudio.gui.metrics_view import MetricsView

    view = MetricsView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    assert view.empty.isVisible() and view.empty.parentWidget() is view.layout_widget
    geometry = view.layout_widget.geometry()
    view.empty.setVisible(False)
    QApplication.processEvents()
    assert view.layout_widget.geometry() == geometry
    view.show_empty("press Run")
    assert view.empty.isVisible() and view.empty.width() > 600
    assert 200 < view.empty.y() < 400  # across the middle: the first plot's title and legend stay in view


def test_long_curves_are_lines_and_short_ones_keep_their_dots(qtbot) -> None:
    import pyqtgraph as pg

    from wmstudio.gui.plot_parts import MARK_POINTS_MAX, marked_curve, set_marked_data

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    curve = marked_curve(widget.getPlotItem(), "#ff0000", "c")
    set_marked_data(curve, np.arange(10.0), np.ones(10))
    assert curve.opts["symbol"] == "o"
    x = np.arange(MARK_POINTS_MAX + 1.0)
    set_marked_data(curve, x, np.ones_like(x))
    assert curve.opts["symbol"] is None and len(curve_data(curve)[0]) == len(x)
    set_marked_data(curve, np.arange(5.0), np.ones(5))
    assert curve.opts["symbol"] == "o"
    assert isinstance(widget, QWidget)
