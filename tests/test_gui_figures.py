"""The figures read right: hover read-outs, labelled axes, legends and stage names off the data,
colour scales, contours and empty states. Each view is built alone with a synthetic run or landscape."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import fake_landscape, synthetic_run
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from wmstudio.gui.series import RunSeries


def _series(seed: int = 1) -> RunSeries:
    s = RunSeries()
    for e in synthetic_run(seed):
        s.apply(e)
    return s


def _shown(qtbot, view, size=(1280, 720)):  # noqa: ANN001, ANN202
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view


def _hover(qtbot, widget, plot, x: float, y: float) -> None:  # noqa: ANN001
    """A real mouse move over ``widget`` (a pyqtgraph view) to the data point (x, y) of ``plot``."""
    QApplication.processEvents()  # pending layout changes first, so the point maps where it is drawn
    scene = plot.vb.mapViewToScene(QPointF(x, y))
    pos = widget.mapFromScene(scene)
    qtbot.mouseMove(widget.viewport(), QPoint(pos.x(), pos.y()))


def _series_view(qtbot, cls):  # noqa: ANN001, ANN202
    series = _series()
    view = _shown(qtbot, cls())
    view.show_series(series)
    view.x_axis.fit(series.last_step)
    qtbot.waitUntil(lambda: list(view.plots.values())[0].vb.viewRange()[0][1] >= series.last_step)
    return view, series


def test_metrics_hover_reads_step_stage_and_values_with_a_crosshair(qtbot) -> None:
    from wmstudio.gui.metrics_view import MetricsView

    view, series = _series_view(qtbot, MetricsView)
    row = next(r for r in series.eval_rows if r["global_step"] == 140)  # fine-tuning's first evaluation
    _hover(qtbot, view.layout_widget, view.acc, 143, 0.5)  # near it: the read-out snaps to it
    qtbot.waitUntil(lambda: "step 140" in view.readout.text())
    text = view.readout.text()
    assert "fine-tune (attack)" in text and f"test accuracy {row['test_acc']:.3f}" in text
    # through every plot in the stack (the sharpness plot is out of it: this run measured no curvature)
    shown = [line for plot, line in zip(view.crosshair.plots, view.crosshair.vlines, strict=True) if plot.isVisible()]
    assert len(shown) == 3 and all(line.isVisible() and line.value() == 140 for line in shown)
    assert view.crosshair.hlines[0].isVisible() and not view.crosshair.hlines[1].isVisible()
    _hover(qtbot, view.layout_widget, view.loss, 61, 1.0)  # the training loss is read per step
    qtbot.waitUntil(lambda: "step 61" in view.readout.text())
    assert f"training loss {series.train_loss[60]:.4g}" in view.readout.text() and "embed" in view.readout.text()
    view.crosshair.hide()
    assert view.readout.text().strip() == "" and not any(line.isVisible() for line in view.crosshair.vlines)



def test_live_redraws_add_no_plot_items(qtbot) -> None:
    """The crosshair, stage names and heat map are made once: a growing run redrawn many times keeps
    the same items in every plot (the live redraw stays as cheap as before)."""
    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.metrics_view import MetricsView

    events = synthetic_run(3)
    views = [_shown(qtbot, MetricsView()), _shown(qtbot, DriftView())]
    series = RunSeries()
    counts = []
    for k, e in enumerate(events):
        series.apply(e)
        if k % 10 == 0 or k == len(events) - 1:
            for v in views:
                v.show_series(series)
            QApplication.processEvents()
            if len(series.stages) == 3:  # every stage begun: nothing more to add
                counts.append([len(p.items) for v in views for p in v.plots.values()])
    assert len(counts) > 5 and all(c == counts[0] for c in counts), counts

def test_stage_names_and_legends_stay_off_the_data(qtbot) -> None:
    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.metrics_view import MetricsView

    for cls in (MetricsView, DriftView):
        view, _ = _series_view(qtbot, cls)
        plots = list(view.plots.values())
        for zoom in (None, (0, 600)):  # zoomed out, fine-tuning's 60 steps are ~100 px wide
            if zoom:
                plots[0].setXRange(*zoom, padding=0)
                QApplication.processEvents()  # the axes follow the new range
            axis = view.marks[0].axis
            boxes = [(t, axis.mapRectToScene(r)) for t, r in axis.label_boxes()]
            assert [t for t, _ in boxes] == ["embed", "fine-tune (attack)", "restore"]
            for k, (_, r) in enumerate(boxes):
                assert not any(r.intersects(p.vb.sceneBoundingRect()) for p in plots)
                assert not any(r.intersects(o) for _, o in boxes[k + 1:])
        for p in plots:
            if p.legend is not None and p.legend.items:
                assert not p.legend.sceneBoundingRect().intersects(p.vb.sceneBoundingRect()), p
                assert p.isAncestorOf(p.legend)  # part of the plot, so in its exports


def test_drift_heat_map_shares_the_step_axis_and_one_colour_scale(qtbot) -> None:
    from wmstudio.gui.drift_view import DriftView

    view, series = _series_view(qtbot, DriftView)
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.left() == pytest.approx(0) and rect.right() == pytest.approx(series.layer_steps[-1])
    assert view.heat.vb.viewRange()[0] == pytest.approx(view.l2.vb.viewRange()[0])
    assert len(view.marks[2].lines) == 3  # the stage boundaries cross the heat map too
    # one scale for every stage: 0 .. the largest layer drift of the run
    assert view.colorbar.levels() == pytest.approx((0.0, view.matrix.max()))
    assert "all stages" in view.colorbar.axis.labelText
    # the column drawn at a step is the evaluation that ends the interval holding it
    steps = np.asarray(series.layer_steps)
    assert view.column_at(139) == int(np.searchsorted(steps, 140)) and view.column_at(140) == view.column_at(139)
    view.set_per_stage(True)
    assert view.per_stage_box.isChecked() and view.colorbar.levels() == pytest.approx((0.0, 1.0))
    stage = np.asarray([r["stage"] for r in series.eval_rows])
    for k in range(3):
        np.testing.assert_allclose(view.shown[:, stage == k], view.matrix[:, stage == k] / view.matrix[:, stage == k].max())
    _hover(qtbot, view.layout_widget, view.heat, 150, 2.5)
    qtbot.waitUntil(lambda: "layer layer2" in view.readout.text(), timeout=2000)
    j = view.column_at(150)
    assert f"L2 {view.matrix[2, j]:.4g}" in view.readout.text() and "fine-tune (attack)" in view.readout.text()


def test_series_views_say_what_to_do_when_empty_and_clear_back_to_it(qtbot) -> None:
    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.metrics_view import MetricsView

    for cls in (MetricsView, DriftView):
        view = _shown(qtbot, cls())
        assert view.empty.isVisible() and "open a run log" in view.empty.text()
        view.show_series(_series())
        assert not view.empty.isVisible()
        view.clear()
        assert view.empty.isVisible() and all(len(c.getData()[0] or []) == 0 for c in view.curves.values())
        assert not any(m.lines for m in view.marks) and view.marks[0].axis.stages == []
    # an empty heat map names no layers: no "layer (x0.001)" with ticks at -400 .. 400
    axis = DriftView().heat.getAxis("left")
    assert axis.labelText == "layer" and not axis.autoSIPrefix and axis._tickLevels == [[]]  # pyqtgraph's set ticks
    assert view.heat.getAxis("left")._tickLevels == [[]]  # cleared back to no layer names


# ------------------------------------------------------------------ landscape
def _landscape_view(qtbot):  # noqa: ANN001, ANN202
    from wmstudio.gui.landscape_view import LandscapeView

    return _shown(qtbot, LandscapeView())


def test_contours_are_lines_of_equal_value_at_round_levels() -> None:
    from wmstudio.gui.contours import contour_segments, nice_levels

    assert list(nice_levels(0.1, 2.1)) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert len(nice_levels(1.0, 1.0)) == 0 and len(nice_levels(0.0, float("nan"))) == 0
    x = y = np.linspace(-1, 1, 41)
    bowl = x[None, :] ** 2 + y[:, None] ** 2
    segs = contour_segments(x, y, bowl, 0.5)
    radius = np.hypot(*segs.reshape(-1, 2).T)
    assert len(segs) > 40 and np.allclose(radius, np.sqrt(0.5), atol=0.01)  # the circle r² = 0.5
    holes = bowl.copy()
    holes[:, :20] = np.nan  # cells with a NaN corner give no line
    assert (contour_segments(x, y, holes, 0.5)[..., 0] >= x[20] - 1e-12).all()
    saddle = contour_segments(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([[1.0, 0.0], [0.0, 1.0]]), 0.5)
    assert len(saddle) == 2  # a saddle cell: two lines


def test_landscape_map_has_labelled_axes_contours_and_a_hover_read_out(qtbot) -> None:
    view = _landscape_view(qtbot)
    assert view.empty.isVisible() and "open a run log" in view.empty.text()
    view.set_busy("", True)  # a log without a landscape is open: no advice to open one
    assert "No landscape in this run log yet: press Compute" in view.empty.text()
    ls = fake_landscape("pca", n=21)
    ls.attrs.update({"explained_variance": [0.7234, 0.1811], "axis_units": "parameter-space distance"})
    view.show_landscape(ls)
    assert not view.empty.isVisible()
    assert view.map.getAxis("bottom").labelText == "PC 1 (72.3% of variance); both axes: parameter-space distance"
    assert view.map.getAxis("left").labelText == "PC 2 (18.1% of variance)"
    # the bowl's loss runs 0.1 .. 2.1: contour lines at round values, each with its value as a label
    assert list(view.contour_levels) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert [t.toPlainText() for t in view.contour_labels] == ["0.25", "0.5", "0.75", "1", "1.25", "1.5", "1.75", "2"]
    assert all(item in view.map.items for item in view.contour_items + view.contour_labels)
    assert view.colorbar.levels() == pytest.approx((0.1, 2.1))
    # the same landscape redrawn (a colour map change): the contours are not computed again
    items = list(view.contour_items)
    view.cmap.setCurrentText("magma")
    assert view.contour_items == items
    view.contours.setChecked(False)
    assert not view.contour_items and not any(i in view.map.items for i in items)
    _hover(qtbot, view.map_widget, view.map, 0.5, 0.5)
    qtbot.waitUntil(lambda: "trigger-set loss" in view.hover.text())
    assert view.hover.text().startswith("PC 1 0.") and ", PC 2 0." in view.hover.text()
    assert "trigger-set loss 0.6" in view.hover.text()
    x, y = view.ls.axes["x"], view.ls.axes["y"]  # the read-out names the grid point whose values it gives
    j, i = int(np.argmin(np.abs(x - 0.5))), int(np.argmin(np.abs(y - 0.5)))
    assert view.hover.text().startswith(f"PC 1 {x[j]:.4g}, PC 2 {y[i]:.4g}")
    # other kinds: distances along the directions, in the units the engine recorded
    plane = fake_landscape("plane")
    view.show_landscape(plane)
    assert view.map.getAxis("bottom").labelText == "distance along direction 1"
    assert view.map.getAxis("left").labelText == "distance along direction 2"
    view.clear()
    assert view.empty.isVisible() and not view.contour_items


def test_contours_wait_for_a_complete_landscape(qtbot) -> None:
    view = _landscape_view(qtbot)
    ls = fake_landscape("plane", done=False)
    ls.done[:3] = True
    view.show_landscape(ls)
    assert view.image.image is not None and not view.contour_items
    ls.done[:] = True
    view.redraw()
    assert len(view.contour_items) > 3


def test_landscape_legend_sits_above_the_map(qtbot) -> None:
    view = _landscape_view(qtbot)
    view.show_landscape(fake_landscape("plane"))
    qtbot.waitUntil(lambda: view.map.legend.isVisible())
    QApplication.processEvents()
    assert not view.map.legend.sceneBoundingRect().intersects(view.map.vb.sceneBoundingRect())



def test_1d_path_names_the_models_above_the_plots_and_reads_out_under_the_mouse(qtbot) -> None:
    view = _landscape_view(qtbot)
    ls = fake_landscape("line", n=8)  # t from -0.1 to 0.6, models at 0, 0.25, 0.5
    view.show_landscape(ls)
    assert view.tabs.currentIndex() == 2
    QApplication.processEvents()
    boxes = view.path_models.label_boxes()
    assert [t for t, _ in boxes] == ["watermarked", "fine-tuned", "restored"]
    for _, rect in boxes:
        assert not view.path_models.mapRectToScene(rect).intersects(view.path_loss.vb.sceneBoundingRect())
    t = ls.axes["t"]
    _hover(qtbot, view.path_widget, view.path_acc, t[3] + 0.01, 0.5)
    qtbot.waitUntil(lambda: "distance" in view.path_readout.text())
    text = view.path_readout.text()
    assert text.startswith(f"distance {t[3]:.4g}") and f"clean accuracy {ls.metrics['test_acc'][3]:.4g}" in text
    assert view.path_crosshair.vlines[0].value() == pytest.approx(t[3])
    view.clear()
    assert view.path_models.stages == []

# ------------------------------------------------------------------ compare, sweep
def test_compare_hover_names_the_run_under_the_mouse(qtbot) -> None:
    from wmstudio.gui.compare_view import CompareView

    view = _shown(qtbot, CompareView())
    assert view.empty.isVisible() and "open run logs" in view.empty.text()
    runs = []
    for k in range(2):
        s = _series(k)
        s.label, s.log_path = f"run-{k}", f"/tmp/run-{k}.h5"
        for r in s.eval_rows:
            r["trigger_acc"] = 0.2 + 0.6 * k  # run-0 at 0.2, run-1 at 0.8: far apart
        view.add_run(s)
        runs.append(s)
    assert not view.empty.isVisible()
    view.plot.setYRange(0, 1, padding=0)
    view.plot.setXRange(0, 240, padding=0)
    _hover(qtbot, view.plot_widget, view.plot, 141, 0.78)
    qtbot.waitUntil(lambda: "run-1" in view.readout.text())
    assert "step 140" in view.readout.text() and "fine-tune (attack)" in view.readout.text()
    assert "trigger accuracy 0.800" in view.readout.text()
    _hover(qtbot, view.plot_widget, view.plot, 141, 0.22)
    qtbot.waitUntil(lambda: "run-0" in view.readout.text())
    _hover(qtbot, view.plot_widget, view.plot, 141, 0.5)  # far from both: nothing named
    qtbot.waitUntil(lambda: view.readout.text().strip() == "")
    # redraws keep one hover marker (not one per redraw), and the legend above the data
    for _ in range(3):
        view.redraw()
    assert sum(item is view.hover_dot for item in view.plot.items) == 1
    QApplication.processEvents()
    assert not view.legend.sceneBoundingRect().intersects(view.plot.vb.sceneBoundingRect())


def test_sweep_matrix_is_a_heat_map_with_a_colour_scale(qtbot, tmp_path) -> None:
    from wmstudio.gui.sweep_view import SweepView

    sv = _shown(qtbot, SweepView())
    assert "Open sweep folder" in sv.hint.text() and not sv.colorbar_widget.isVisible()
    sv.folder, sv.axes = tmp_path, ["finetune.lr"]
    sv.rows = [{"finetune.lr": lr, "status": "finished", "run_id": f"r{k}", "error": "", "restore.trigger_acc": acc,
                "attacked.trigger_acc": acc, "gain": 0.0, "restore.test_acc": acc, "attacked.drift_rel": 2 * acc}
               for k, (lr, acc) in enumerate(((0.01, 0.2), (0.03, 0.9)))]
    sv.draw()
    assert sv.colorbar_widget.isVisible() and sv.colorbar.levels() == pytest.approx((0.0, 1.0))
    assert sv.colorbar.axis.labelText == "trigger accuracy (restored)"
    # a cell's colour is its value's place on the bar
    for row, acc in ((0, 0.2), (1, 0.9)):
        want = sv.cmap.map(acc, mode="qcolor")
        assert sv.table.item(row, 0).background().color().name() == want.name()
    sv.metric_box.setCurrentIndex(sv.metric_box.findData("attacked.drift_rel"))
    assert sv.colorbar.levels() == pytest.approx((0.0, 1.8))
    assert sv.table.item(1, 0).background().color().name() == sv.cmap.map(1.0, mode="qcolor").name()
    opened: list[str] = []
    sv.open_run.connect(opened.append)
    sv.table.cellClicked.emit(0, 0)  # records without logs: said, not silently ignored
    assert not opened and "No run log of this cell" in sv.hint.text() and "r0" in sv.hint.text()
    sv.status.setText("a sweep name far longer than any window is wide " * 8)
    assert sv.minimumSizeHint().width() < 700  # a long name never widens the window


def test_sweep_matrix_leaves_collapsed_runs_out_of_its_means(qtbot, tmp_path) -> None:
    from wmstudio.gui.sweep_view import SweepView

    sv = _shown(qtbot, SweepView())
    sv.folder, sv.axes = tmp_path, ["finetune.lr"]
    base = {"status": "finished", "error": "", "gain": 0.0, "attacked.drift_rel": 0.1}
    sv.rows = [{**base, "finetune.lr": 0.01, "run_id": "ok", "restore.trigger_acc": 0.4, "attacked.trigger_acc": 0.4,
                "restore.test_acc": 0.8},
               {**base, "finetune.lr": 0.01, "run_id": "flat", "restore.trigger_acc": 1.0, "attacked.trigger_acc": 1.0,
                "restore.test_acc": 0.1, "excluded": True, "flag": "test accuracy 0.100 is within 0.1 of chance"},
               {**base, "finetune.lr": 0.03, "run_id": "flat2", "restore.trigger_acc": 1.0, "attacked.trigger_acc": 1.0,
                "restore.test_acc": 0.1, "excluded": True, "flag": "one class takes 99% of the test predictions"}]
    sv.draw()
    assert sv.table.item(0, 0).text().startswith("0.400") and "1 collapsed, left out" in sv.table.item(0, 0).text()
    assert "COLLAPSED" in sv.table.item(0, 0).toolTip()
    assert sv.table.item(1, 0).text() == "collapsed (no watermark reading)"


def test_control_is_a_dashed_curve_and_a_collapsed_stage_is_marked(qtbot) -> None:
    """Issue 21: the control rate is drawn beside trigger accuracy, the effect is read out, and a
    stage whose model collapsed says so above the plots."""
    from wmstudio.events import Metrics
    from wmstudio.gui.metrics_view import MetricsView
    from wmstudio.gui.series_view import COLLAPSED_MARK

    series = RunSeries()
    for e in synthetic_run(1):
        if isinstance(e, Metrics):
            collapsed = 1.0 if e.stage == "finetune" else 0.0
            e = Metrics(e.stage, e.epoch, e.global_step, {**e.values, "control_acc": 0.25,
                                                          "trigger_effect": e.values["trigger_acc"] - 0.25,
                                                          "collapsed": collapsed}, e.layer_l2, e.layer_cos)
        series.apply(e)
    view = _shown(qtbot, MetricsView())
    view.show_series(series)
    view.x_axis.fit(series.last_step)
    x, y = view.curves["control_acc"].getData()
    assert len(x) == len(series.eval_rows) and np.allclose(y, 0.25)
    assert view.curves["control_acc"].opts["pen"].style() == Qt.PenStyle.DashLine
    names = [t for t, _ in view.marks[0].axis.label_boxes()]
    assert any(t.startswith("fine-tune") and t.endswith(COLLAPSED_MARK) for t in names)
    assert not any(t.startswith("embed") and t.endswith(COLLAPSED_MARK) for t in names)
    row = next(r for r in series.eval_rows if r["global_step"] == 140)
    _hover(qtbot, view.layout_widget, view.acc, 140, 0.5)
    qtbot.waitUntil(lambda: "step 140" in view.readout.text())
    text = view.readout.text()
    assert "control 0.250" in text and f"effect {row['trigger_acc'] - 0.25:+.3f}" in text and "collapsed YES" in text


def test_metric_axes_read_the_values_themselves_without_an_si_factor(qtbot) -> None:  # noqa: ANN001
    """A CIFAR-10 attack's losses of 0.1-0.8 were drawn as "cross-entropy (x0.001)" with ticks at 100 .. 800."""
    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.metrics_view import MetricsView

    for cls in (MetricsView, DriftView):
        view, series = _series_view(qtbot, cls)
        for rows in series.eval_rows:
            for k in ("test_loss", "trigger_loss"):
                rows[k] = 0.1 + 0.7 * rows.get(k, 0.0) / 10  # losses of a realistic model, well below 1
        view.show_series(series)
        for name, plot in view.plots.items():
            axis = plot.getAxis("left")
            assert not axis.autoSIPrefix and "x0.0" not in axis.labelString(), (cls.__name__, name)
