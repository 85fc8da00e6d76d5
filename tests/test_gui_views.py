"""Every view tells the truth: exports match the screen, axes read right, stale data is cleared.

Plain widgets on the offscreen Qt platform, with synthetic runs (no training) unless a stored
landscape is needed.
"""

from __future__ import annotations

import re
import shutil
from types import SimpleNamespace

import numpy as np
import pyqtgraph as pg
import pytest
from gui_helpers import (
    colour_box,
    curve_data,
    export_plots,
    fake_landscape,
    image_array,
    make_window,
    open_log,
    settle,
    show_synthetic_run,
)
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QMenu

from wmstudio.events import LandscapeFinished, LandscapePoints, LandscapeStarted
from wmstudio.gui.theme import plot_colors
from wmstudio.landscape.spec import METRICS

OTHER_TITLES = {"accuracy": ("Loss", "Verification p-value"), "loss": ("Accuracy", "Verification p-value"),
                "p_value": ("Accuracy", "Loss")}


def _render_svg(path, size: QSize) -> np.ndarray:  # noqa: ANN001
    img = QImage(size, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    painter = QPainter(img)
    QSvgRenderer(str(path)).render(painter)
    painter.end()
    return image_array(img)


def _screen(plot) -> np.ndarray:  # noqa: ANN001
    """What the window shows of one plot: its widget grabbed, cropped to the plot's rectangle."""
    view = plot.scene().views()[0]
    shot = image_array(view.grab().toImage())
    ratio = shot.shape[1] / view.viewport().width()
    r = view.mapFromScene(plot.sceneBoundingRect()).boundingRect()
    return shot[int(r.top() * ratio):int((r.bottom() + 1) * ratio), int(r.left() * ratio):int((r.right() + 1) * ratio)]


def _shown_window(qtbot, tmp_path):  # noqa: ANN001, ANN202
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    show_synthetic_run(win)
    settle(qtbot, win)
    return win


def test_each_exported_svg_matches_its_png_and_the_screen_and_holds_only_its_plot(qtbot, tmp_path) -> None:
    win = _shown_window(qtbot, tmp_path)
    written = export_plots(win, tmp_path / "figs")
    c = plot_colors("light")
    axes = pg.getConfigOption("foreground")
    axes = QColor(*pg.mkColor(axes).getRgb()[:3]).name()
    plots = {**win.tabs.metrics_view.plots, **win.tabs.drift_view.plots}
    for name, colour in (("accuracy", c["trigger"]), ("loss", c["trigger"]), ("p_value", c["pvalue"]),
                         ("drift_l2", c["drift"])):
        if name.startswith("drift"):
            win.tabs.setCurrentWidget(win.tabs.drift_view)
            settle(qtbot, win)
        png = QImage(str(tmp_path / "figs" / f"{name}.png"))
        svg_path = tmp_path / "figs" / f"{name}.svg"
        assert svg_path in written and not png.isNull()
        screen, ours, svg = _screen(plots[name]), image_array(png), _render_svg(svg_path, png.size())
        h, w = screen.shape[:2]
        tol = [max(0.02, 5 / w)] * 2 + [max(0.02, 5 / h)] * 2  # 2% or 5 screen pixels
        # the curve's extremes, and the axes with their tick labels, sit at the same places in all three
        for col, tol in ((colour, 60), (axes, 150)):  # axis lines are thin: take their anti-aliased edges too
            boxes = [colour_box(a, col, tol) for a in (screen, ours, svg)]
            assert None not in boxes, (name, col)
            for k, fmt in ((1, "png"), (2, "svg")):
                assert (np.abs(np.subtract(boxes[k], boxes[0])) <= tol).all(), \
                    f"{name}.{fmt} vs screen ({col}): {np.round(boxes[k], 3)} vs {np.round(boxes[0], 3)}"
        text = svg_path.read_text()
        for other in OTHER_TITLES.get(name, ()):
            assert f">{other}" not in text, f"{name}.svg also holds the plot {other!r}"


def test_exported_legend_lists_the_curves_the_screen_legend_lists(qtbot, tmp_path) -> None:
    from wmstudio.gui.export_spec import figure_of

    win = _shown_window(qtbot, tmp_path)
    plot = win.tabs.metrics_view.loss
    win.tabs.metrics_view.curves["test_loss"].setData([], [])  # listed on screen though it holds no point now
    settle(qtbot, win)
    shown = [label.text for _, label in plot.legend.items]
    exported = [line.label for line in figure_of(plot).panels[0].lines if line.label]
    assert exported == shown and "test loss" in exported


def _axis_ticks(axis) -> list[tuple[float, str]]:  # noqa: ANN001
    lo, hi = axis.range
    out = []
    for spacing, values in axis.tickValues(lo, hi, axis.height()):
        out += zip(values, axis.tickStrings(values, axis.autoSIPrefixScale, spacing), strict=True)
    return out


def _read_power(label: str) -> int:
    digits = label.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
    return 0 if label == "1" else int(digits.removeprefix("10"))


def test_p_value_axis_reads_whole_decades_without_a_factor(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    settle(qtbot, win)
    axis = win.tabs.metrics_view.pval.getAxis("left")
    for filled in (False, True):
        if filled:
            show_synthetic_run(win)  # p-values down to 10^-60
            win.ctl.series.eval_rows[-1]["p_value"] = 1e-300  # and one at the floor the plot clips to
            win.tabs.metrics_view.clear()  # the row was changed in place: draw the run afresh
            win.tabs.show_run(win.ctl.series)
            settle(qtbot, win)
        ticks = _axis_ticks(axis)
        assert "x1e" not in axis.labelString() and "(" not in axis.labelString()
        assert 2 <= len(ticks) <= max(2, axis.height() // 20), ticks
        for value, label in ticks:
            assert re.fullmatch(r"1|10⁻[⁰¹²³⁴⁵⁶⁷⁸⁹]+", label), ticks  # no 2 3 4 … 9, no positive powers
            assert _read_power(label) == round(value) and value == round(value), (value, label)
        steps = np.diff([v for v, _ in ticks])
        assert (steps == steps[0]).all()  # evenly spaced
        assert axis.range[1] <= np.log10(2.0)  # the view does not run above p = 1
    # the view reaches the floor (p = 10^-300), and the lowest tick is within one tick spacing of it
    assert axis.range[0] <= -300 and min(v for v, _ in ticks) - axis.range[0] <= steps[0]


def _assert_landscape_views_empty(lv) -> None:  # noqa: ANN001
    assert lv.ls is None and lv.status.text() == "no landscape" and lv.hover.text().strip() == ""
    assert lv.image.image is None
    assert not lv.trajectory_items and not lv.model_labels and len(lv.map.legend.items) == 0
    assert len(lv.models_item.data) == 0
    assert all(len(curve_data(c)[0]) == 0 for c in lv.path_curves.values()) and not lv.path_lines
    assert lv.stored.count() == 0 and not lv.has_3d


def test_landscape_views_are_cleared_for_another_log_and_a_new_run(qtbot, tmp_path, demo_copy) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    open_log(qtbot, win, demo_copy)
    other = shutil.copy(demo_copy, tmp_path / "other.h5")
    for switch in ("open", "run"):
        lv.show_landscape(fake_landscape("line"))
        lv.show_landscape(fake_landscape("plane"))
        lv.map_panel.hover_at((lv.map.vb.mapViewToScene(QPointF(0.0, 0.0)),))
        assert lv.image.image is not None and lv.trajectory_items and "trigger-set loss" in lv.hover.text()
        assert "landscape_2d" in win.tabs.all_plots()
        if switch == "open":
            open_log(qtbot, win, other)
        else:
            win.control.jobs.start = lambda kind, job: None  # the run itself is not the point here
            assert win.start_run() is not None
            win.control.jobs.done.emit("run", None)  # ... and it ends at once
        _assert_landscape_views_empty(lv)
        assert not {"landscape_2d", "landscape_path"} & set(win.tabs.all_plots())
        win.menuBar().actions()[0].menu().aboutToShow.emit()
        assert not win.export_3d_action.isEnabled()


def test_landscape_kinds_the_log_cannot_have_are_disabled_with_the_reason(qtbot, tmp_path) -> None:
    from PySide6.QtCore import Qt as QtNS

    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    lv.kind.setCurrentText("plane")
    lv.set_kind_reasons({"plane": "needs exactly 3 stages", "line": "needs 2", "pca": "", "random": ""})
    plane = lv.kind.findText("plane")
    assert not lv.kind.model().item(plane).isEnabled()
    assert "needs exactly 3 stages" in lv.kind.itemData(plane, QtNS.ItemDataRole.ToolTipRole)
    assert lv.kind.currentText() in ("pca", "random")  # moved off the kind that cannot be computed
    lv.set_kind_reasons({})
    assert lv.kind.model().item(plane).isEnabled()


def test_landscape_status_and_hover_describe_the_shown_surface(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    lv.show_landscape(fake_landscape("plane", "first"))
    assert lv.status.text().startswith("first") and "81/81" in lv.status.text()
    lv.map_panel.hover_at((lv.map.vb.mapViewToScene(QPointF(1.0, 1.0)),))
    first = lv.hover.text()
    assert "2.1" in first  # the loss at the corner of the bowl
    second = fake_landscape("plane", "second")
    for m in second.metrics:
        second.metrics[m] = second.metrics[m] * 0 + 7.0
    lv.show_landscape(second)
    assert lv.status.text().startswith("second") and lv.hover.text().strip() == ""
    lv.map_panel.hover_at((lv.map.vb.mapViewToScene(QPointF(1.0, 1.0)),))
    assert "7" in lv.hover.text() and lv.hover.text() != first


def test_landscape_progress_reaches_the_status_bar_and_replaces_an_old_failure(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.ctl.log_path = tmp_path / "run.h5"
    win.run_panel.progress_label.setText("failed")  # what an earlier failed landscape left
    win.run_panel.progress.setRange(0, 100)
    win.run_panel.progress.setValue(48)
    ls = fake_landscape("plane", "plane-3", n=3, done=False)
    seen: list[tuple[str, str, int]] = []

    def job(callback, _control):  # noqa: ANN001, ANN202
        callback(LandscapeStarted("run.h5", ls.name, ls.kind, ls.done.shape, 0, ls))
        for k in range(3):
            idx = tuple(range(3 * k, 3 * k + 3))
            callback(LandscapePoints("plane-3", 0, idx, {m: (0.5,) * 3 for m in METRICS}, 3 * k + 3, 9))
        callback(LandscapeFinished("plane-3", "finished", 0.1))
        return SimpleNamespace(status="finished")

    def spy(_events):  # noqa: ANN001, ANN202 - connected after the window's own handler: sees its result
        seen.append((win.statusBar().currentMessage(), win.run_panel.progress_label.text(), win.run_panel.progress.value()))

    win.control.jobs.events.connect(spy)
    win.control.start("landscape", job)
    assert win.run_panel.progress_label.text() != "failed" and win.run_panel.progress.value() != 48
    qtbot.waitUntil(lambda: not win.busy, timeout=10_000)
    assert any("9/9 points" in label for _, label, _ in seen), seen
    assert "failed" not in win.run_panel.progress_label.text() and "finished" in win.run_panel.progress_label.text()
    assert win.run_panel.progress.value() == win.run_panel.progress.maximum()
    assert "finished" in win.statusBar().currentMessage()
    assert lv_status_ok(win.tabs.landscape_view)


def lv_status_ok(lv) -> bool:  # noqa: ANN001
    return lv.status.text() != "no landscape" and "plane-3" in lv.status.text()


def test_1d_path_plots_share_one_x_scale(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    win.tabs.setCurrentWidget(win.tabs.landscape_view)
    win.tabs.landscape_view.show_landscape(fake_landscape("line"))
    settle(qtbot, win)
    lv = win.tabs.landscape_view
    top, bottom = lv.path_loss.getAxis("bottom"), lv.path_acc.getAxis("bottom")
    assert "x0.001" not in bottom.labelString() and "(x" not in bottom.labelString()
    assert top.range == pytest.approx(bottom.range)
    def major(axis) -> list[str]:  # noqa: ANN001
        spacing, values = axis.tickValues(*axis.range, axis.width())[0]
        return axis.tickStrings(values, axis.autoSIPrefixScale, spacing)

    labels = major(bottom)
    assert major(top) == labels
    # the labels read the distances themselves (t runs -0.1 .. 0.6), not thousandths of them
    assert len(labels) >= 3 and all(-0.3 <= float(v) <= 0.8 for v in labels), labels


def test_map_legend_is_readable_and_lists_only_drawn_trajectories(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    lv.cmap.setCurrentText("magma")  # a dark colour map
    lv.show_landscape(fake_landscape("plane"))
    names = [label.text for _, label in lv.map.legend.items]
    assert names == ["embed trajectory"]  # the pretrain path lies far outside this map
    box = pg.mkBrush(lv.map.legend.opts["brush"]).color()
    text = pg.mkColor(lv.map.legend.opts["labelTextColor"] or pg.getConfigOption("foreground"))
    assert box.alpha() >= 200  # the colour map does not show through
    assert abs(box.lightnessF() - text.lightnessF()) > 0.4


def test_published_view_sets_the_kind_box(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    lv.kind.setCurrentText("random")
    requested = []
    lv.compute_requested.connect(requested.append)
    lv.controls.request_published()
    assert requested and lv.kind.currentText() == requested[0].kind == "pca"


def test_a_clicked_sweep_cell_keeps_its_colour(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.resize(1280, 720)
    win.show()
    win.tabs.setCurrentWidget(win.tabs.sweep_view)
    sv = win.tabs.sweep_view
    sv.folder, sv.axes = tmp_path, ["finetune.lr"]
    sv.rows = [{"finetune.lr": lr, "status": "finished", "run_id": f"r{k}", "error": "",
                "restore.trigger_acc": acc, "finetune.trigger_acc": acc, "restore.test_acc": acc,
                "finetune.drift_rel": acc} for k, (lr, acc) in enumerate(((0.01, 0.2), (0.03, 0.9)))]
    sv.draw()
    settle(qtbot, sv)
    table = sv.table
    for row in range(2):
        item = table.item(row, 0)
        rect = table.visualItemRect(item)
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.waitUntil(lambda row=row: table.currentRow() == row)  # the click selected it
        shot = image_array(table.viewport().grab().toImage())
        ratio = shot.shape[1] / table.viewport().width()
        cell = shot[int((rect.top() + 2) * ratio):int((rect.bottom() - 1) * ratio),
                    int((rect.left() + 2) * ratio):int((rect.right() - 1) * ratio), :3].reshape(-1, 3)
        colours, counts = np.unique(cell, axis=0, return_counts=True)
        shown = colours[counts.argmax()]
        want = item.background().color()
        # (a selection highlight replaces the colour: 70 levels off)
        assert np.abs(shown.astype(int) - [want.red(), want.green(), want.blue()]).max() <= 6, (row, shown)


def test_form_sections_open_together_without_scroll_bars_of_their_own(qtbot, tmp_path) -> None:
    from PySide6.QtWidgets import QScrollArea

    win = make_window(qtbot, tmp_path)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    form = win.setup.form
    assert not form.findChildren(QScrollArea)  # the column around the form scrolls, the form has none
    for name in ("run", "embed", "restore"):
        form.sections[name].set_open(True)
    assert all(form.sections[n].is_open for n in ("run", "embed", "restore"))
    qtbot.waitUntil(lambda: form.sections["embed"].body.height() >= form.sections["embed"].body.sizeHint().height())
    images = np.random.default_rng(0).integers(0, 255, (36, 1, 8, 8), dtype=np.uint8)
    win.setup.trigger_grid.show_set(images, np.arange(36) % 10, "noise")  # the preview below never squeezes it
    qtbot.waitUntil(lambda: form.sections["embed"].body.height() >= form.sections["embed"].body.sizeHint().height())
    # an invalid field in a closed section marks that section's title
    form.sections["restore"].set_open(False)
    form.set_value("restore.lr", -1.0)
    assert form.error is not None and form.error.field == "restore.lr"
    assert form.sections["restore"].header.text().startswith("⚠") and not form.sections["restore"].is_open
    assert not form.sections["embed"].header.text().startswith("⚠")
    form.reveal_error()
    assert form.sections["restore"].is_open
    form.set_value("restore.lr", 0.003)
    assert not form.sections["restore"].header.text().startswith("⚠")


def test_form_labels_are_written_for_people_and_pickers_say_what_they_want(qtbot, tmp_path, monkeypatch) -> None:
    from PySide6.QtWidgets import QFormLayout

    win = make_window(qtbot, tmp_path)
    form = win.setup.form
    labels = {}
    for section in form.sections.values():
        layout = section.body.layout()
        assert isinstance(layout, QFormLayout)
        for row in range(layout.rowCount()):
            label = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if label is not None:
                labels[label.widget().text()] = row
    assert "source data set" in labels and "learning rate" in labels
    assert not [t for t in labels if "." in t.replace("(.py)", "")]  # no dotted config names as labels
    asked = {}
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getOpenFileName",
                        lambda _p, title, _d, filt: asked.update(title=title, filter=filt) or ("", ""))
    from PySide6.QtWidgets import QPushButton

    browse = form.widget("model.checkpoint").parent().findChild(QPushButton)  # the "…" beside the field
    qtbot.mouseClick(browse, Qt.MouseButton.LeftButton)
    assert "checkpoint" in asked["title"].lower()
    for suffix in ("*.pt", "*.pth", "*.th", "*.safetensors", "*.h5"):
        assert suffix in asked["filter"]
    name = form.widget("run.name")  # a long value shows its beginning, not its end
    form.set_value("run.name", "a run name far longer than the field is wide, " * 3)
    assert name.cursorPosition() == 0


def test_error_dialogs_mention_the_run_log_only_when_one_was_written(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("model.checkpoint", str(tmp_path / "missing.safetensors"))
    win.setup.form.revalidate()
    if win.setup.form.error is not None:  # the form itself refuses it: the dialog then has no run behind it
        win.setup.save_config_dialog()
    else:
        out = win.start_run()
        qtbot.waitUntil(lambda: not win.busy, timeout=60_000)
        assert win.last_error is not None
        if out.exists():
            assert str(out) in win.last_error.informativeText()
    assert "run log" not in win.last_error.informativeText() or win.ctl.log_path.exists()
    # a config file that cannot be read: no run, no log
    bad = tmp_path / "bad.toml"
    bad.write_text("[embed]\nepochs = 'many'\n")
    win.setup.load_config_file(bad)
    assert "run log" not in win.last_error.informativeText()
    # a landscape that fails keeps its points in the log, and says so
    win.ctl.log_path = tmp_path / "run.h5"
    win.ctl.log_path.write_bytes(b"")
    win.control.jobs.failed.emit("landscape", "landscape went wrong", "", True)
    assert str(win.ctl.log_path) in win.last_error.informativeText()


def test_the_runs_folder_is_saved_when_changed(qtbot, tmp_path, monkeypatch) -> None:
    win = make_window(qtbot, tmp_path)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getExistingDirectory", lambda *a, **k: str(folder))
    win.choose_runs_dir()
    # read back by another settings object, as the next start of the app would (no clean exit here)
    from PySide6.QtCore import QSettings

    again = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert again.value("runs_dir") == str(folder)


def test_readme_shortcuts_match_the_tabs(qtbot, tmp_path) -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    m = re.search(r"`Ctrl\+1\.\.(\d)` tabs", readme)
    assert m, "the README lists the tab shortcuts as `Ctrl+1..N` tabs"
    win = make_window(qtbot, tmp_path)
    assert int(m[1]) == win.tabs.count()
    shortcuts = {a.shortcut().toString() for menu in win.menuBar().findChildren(QMenu) for a in menu.actions()}
    assert {f"Ctrl+{k}" for k in range(1, win.tabs.count() + 1)} <= shortcuts


def test_landscape_map_svg_draws_the_model_markers_where_the_png_does(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    win.tabs.setCurrentWidget(win.tabs.landscape_view)
    win.tabs.landscape_view.show_landscape(fake_landscape("plane"))
    settle(qtbot, win)
    export_plots(win, tmp_path / "figs")
    png = QImage(str(tmp_path / "figs" / "landscape_2d.png"))
    svg_path = tmp_path / "figs" / "landscape_2d.svg"
    marker = "#e53935"  # the models' red (the colour map has no red)
    ours, theirs = colour_box(image_array(png), marker), colour_box(_render_svg(svg_path, png.size()), marker)
    assert colour_box(_screen(win.tabs.landscape_view.map), marker) is not None
    assert ours is not None and theirs is not None
    tol = np.array([5 / png.width(), 5 / png.width(), 5 / png.height(), 5 / png.height()])  # 5 pixels of the PNG
    assert (np.abs(np.subtract(theirs, ours)) <= tol).all(), (np.round(ours, 4), np.round(theirs, 4))

    def red_share(a: np.ndarray) -> float:  # the markers' area, as a share of the picture
        return float((np.abs(a[..., :3].astype(int) - [0xE5, 0x39, 0x35]).sum(-1) < 60).mean())

    # one marker per model, drawn as a shape (not the whole symbol atlas pasted at every model)
    assert red_share(_render_svg(svg_path, png.size())) == pytest.approx(red_share(image_array(png)), rel=0.35)
    assert "clip-path" in svg_path.read_text()  # the map's content is clipped to its axes


def test_map_legend_is_hidden_when_empty_and_skips_paths_that_are_dots_at_its_scale(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    assert not lv.map.legend.isVisible()  # no landscape: no empty legend box
    ls = fake_landscape("random")
    ls.trajectories["finetune"] = {"xy": np.array([[0.001, 0.0], [0.002, 0.001]])}  # across the plane, not in it
    lv.show_landscape(ls)
    assert lv.map.legend.isVisible()
    assert [label.text for _, label in lv.map.legend.items] == ["embed trajectory"]
    lv.clear()
    assert not lv.map.legend.isVisible()


def test_a_1d_landscape_leaves_the_2d_views_empty_and_says_why(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    lv.show_landscape(fake_landscape("plane"))
    lv.show_landscape(fake_landscape("line"))
    assert lv.image.image is None and not lv.trajectory_items and len(lv.models_item.data) == 0
    assert "1D path" in lv.surface_note.text() and not lv.surface_note.isHidden()
    assert "1D path" in lv.map.titleLabel.text
    lv.show_landscape(fake_landscape("plane"))
    assert lv.surface_note.isHidden() and lv.image.image is not None


def test_opening_a_log_makes_the_progress_row_speak_of_it(qtbot, tmp_path, demo_copy) -> None:
    win = make_window(qtbot, tmp_path)
    win.run_panel.progress_label.setText("finished: some-other-run.h5")
    win.run_panel.progress.setRange(0, 100)
    win.run_panel.progress.setValue(48)
    open_log(qtbot, win, demo_copy)
    assert demo_copy.name in win.run_panel.progress_label.text() and "other" not in win.run_panel.progress_label.text()
    assert win.run_panel.progress.value() == win.run_panel.progress.maximum()  # a finished log
    assert demo_copy.name in win.statusBar().currentMessage()


def test_an_error_escaping_a_slot_is_shown_not_lost(qtbot, tmp_path, monkeypatch) -> None:
    import sys

    from PySide6.QtCore import QTimer

    from wmstudio.gui.app import install_error_hook

    win = make_window(qtbot, tmp_path)
    monkeypatch.setattr(sys, "excepthook", lambda *a: None)  # the test's own terminal stays quiet
    install_error_hook(win)
    win.last_error = None

    def broken() -> None:
        raise RuntimeError("a bug in a slot")

    QTimer.singleShot(0, broken)
    qtbot.waitUntil(lambda: win.last_error is not None, timeout=5000)
    assert "a bug in a slot" in win.last_error.text() and "bug" in win.last_error.informativeText()
    assert win.isEnabled()


def test_sweep_headers_tell_two_axes_with_the_same_short_name_apart(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    sv = win.tabs.sweep_view
    sv.folder, sv.axes = tmp_path, ["finetune.lr", "restore.lr"]
    sv.rows = [{"finetune.lr": a, "restore.lr": b, "status": "finished", "run_id": f"r{a}{b}", "error": "",
                "restore.trigger_acc": 0.5, "finetune.trigger_acc": 0.5, "restore.test_acc": 0.5,
                "finetune.drift_rel": 0.5} for a in (0.01, 0.03) for b in (0.001, 0.003)]
    sv.draw()
    rows = [sv.table.verticalHeaderItem(i).text() for i in range(2)]
    cols = [sv.table.horizontalHeaderItem(j).text() for j in range(2)]
    assert rows == ["finetune.lr=0.01", "finetune.lr=0.03"] and cols == ["restore.lr=0.001", "restore.lr=0.003"]


def test_stacked_plots_cover_the_same_steps_and_the_p_value_keeps_its_first_point(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    show_synthetic_run(win)
    win.ctl.series.eval_rows[0]["p_value"] = 1.0  # before training: chance level, p = 1
    win.ctl.series.eval_rows[0]["global_step"] = 0.0
    win.tabs.metrics_view.clear()  # rows changed in place: draw the run afresh
    win.tabs.show_run(win.ctl.series)
    settle(qtbot, win)
    mv = win.tabs.metrics_view
    ranges = [p.vb.viewRange()[0] for p in (mv.acc, mv.loss, mv.pval)]
    assert ranges[1] == pytest.approx(ranges[0], abs=1e-6) and ranges[2] == pytest.approx(ranges[0], abs=1e-6)
    assert ranges[2][0] <= 0.0  # step 0 is inside the p-value plot ...
    assert mv.pval.vb.viewRange()[1][1] >= 0.0  # ... and so is its p = 1
    win.tabs.setCurrentWidget(win.tabs.drift_view)
    settle(qtbot, win)
    dv = win.tabs.drift_view
    assert dv.cos.vb.viewRange()[0] == pytest.approx(dv.l2.vb.viewRange()[0], abs=1e-6)


def test_stage_labels_do_not_run_into_each_other(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    show_synthetic_run(win)
    win.tabs.metrics_view.acc.setXRange(0, 600, padding=0)  # zoomed out: 60 fine-tuning steps are ~70 px
    settle(qtbot, win)
    boxes = win.tabs.metrics_view.marks[0].axis.label_boxes()
    assert [text for text, _ in boxes] == ["embed", "fine-tune (attack)", "restore"]
    rects = [rect for _, rect in boxes]
    for a, b in zip(rects, rects[1:], strict=False):
        assert not a.intersects(b), (a, b)
    axis = win.tabs.metrics_view.marks[0].axis
    for x_max in (600, 1500, 3000):  # further out, a first-row name's tick would cross a second-row name
        win.tabs.metrics_view.acc.setXRange(0, x_max, padding=0)
        settle(qtbot, win)
        rects = [rect for _, rect in axis.label_boxes()]
        _line, ticks, _texts = axis.generateDrawSpecs(None)
        for _pen, top, bottom in ticks:
            for r in rects:
                if min(abs(r.left() - 2 - top.x()), abs(r.right() + 2 - top.x())) > 0.01:  # not the tick's own name
                    crosses = r.left() <= top.x() <= r.right() and top.y() < r.bottom() and bottom.y() > r.top()
                    assert not crosses, (x_max, top, bottom, r)
    # a stage starting near the right edge is named left of its tick, whole (it was cut off at the edge)
    last = win.ctl.series.stages[-1].start_step
    win.tabs.metrics_view.acc.setXRange(0, last + 3, padding=0)
    settle(qtbot, win)
    bounds = axis.mapRectFromParent(axis.geometry())
    boxes = axis.label_boxes()
    assert boxes[-1][0] == "restore" and boxes[-1][1].right() <= bounds.right() + 0.01, (boxes, bounds)
    assert all(bounds.left() - 0.01 <= r.left() for _, r in boxes)


def test_compare_names_runs_says_what_differs_and_flags_unfinished_ones(qtbot) -> None:
    from wmstudio.gui.compare_view import CompareView
    from wmstudio.gui.series import RunSeries, StageSpan

    cv = CompareView()
    qtbot.addWidget(cv)
    done = RunSeries(label="demo", log_path="/x/a.h5", log_status="finished", stages=[StageSpan("embed", 0, 1, "finished")])
    cut = RunSeries(label="demo", log_path="/x/b.h5", log_status="cancelled", stages=[StageSpan("embed", 0, 1, "cancelled")])
    cv.add_run(done, {"run": {"name": "demo", "seed": 0}, "finetune": {"lr": 0.01}})
    cv.add_run(cut, {"run": {"name": "demo", "seed": 0}, "finetune": {"lr": 0.04}})
    assert [cv.list.item(i).text() for i in range(2)] == ["demo (a.h5)", "demo (b.h5) ⚠ cancelled"]
    assert [cv.table.item(i, 1).text() for i in range(2)] == ["finetune.lr = 0.01", "finetune.lr = 0.04"]
    names = [label.text for _sample, label in cv.legend.items]
    assert names == ["demo (a.h5)", "demo (b.h5) ⚠ cancelled"]  # same-named runs told apart in the legend
    older = RunSeries(label="old", log_path="/x/c.h5", log_status="finished", stages=[StageSpan("embed", 0, 1, "finished")])
    cv.add_run(older, {"run": {"name": "old", "seed": 0}})  # a log from before [finetune] was recorded
    assert cv.table.item(2, 1).text() == "finetune.lr not set (an older log)"


def test_hover_marks_stay_out_of_exported_plots(qtbot, tmp_path) -> None:
    from PySide6.QtGui import QImage

    from wmstudio.gui.compare_view import CompareView
    from wmstudio.gui.export import export_plot

    cv = CompareView()
    qtbot.addWidget(cv)
    cv.resize(900, 600)
    cv.show()
    cv.hover_dot.setData([0.5], [0.5])  # the mouse's dot, as a hover leaves it
    cv.plot.setXRange(0, 1)
    cv.plot.setYRange(0, 1)
    plain = export_plot(cv.plot, tmp_path / "plain.png")
    cv.hover_dot.setData([], [])
    none = export_plot(cv.plot, tmp_path / "none.png")
    assert QImage(str(plain)) == QImage(str(none))  # the dot left no trace in the file


def test_the_landscape_views_open_from_the_keyboard(qtbot, tmp_path) -> None:
    """Alt+2 / Alt+3 / Alt+P pick the 2D map, the 3D surface and the 1D path (the packaged app's check
    opens the 3D view this way, not by a click at a fixed position)."""
    from PySide6.QtTest import QTest

    win = make_window(qtbot, tmp_path)
    win.show()
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    win.activateWindow()
    assert QTest.qWaitForWindowActive(win)
    lv = win.tabs.landscape_view
    win.tabs.setCurrentWidget(lv)
    for key, index in ((Qt.Key.Key_3, 1), (Qt.Key.Key_P, 2), (Qt.Key.Key_2, 0)):
        QTest.keyClick(win, key, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(lambda index=index: lv.tabs.currentIndex() == index, timeout=2000)


def test_long_progress_words_never_run_into_the_device_name(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    bar = win.run_panel
    bar.set_device("cpu (2 threads)")
    bar.progress_label.setText("fine-tune (attack): epoch 5/6, step 40/48, 00:00 left in stage, 00:12 left in all " * 2)
    qtbot.waitUntil(lambda: bar.device_label.isVisible())
    QApplication.processEvents()
    assert bar.device_label.geometry().left() - bar.progress_label.geometry().right() >= 8  # a visible gap
    assert win.width() == 1280  # nor widen the window


def test_a_small_window_keeps_titles_legends_and_plots_readable(qtbot, tmp_path) -> None:
    """At 800x550 the Metrics legends had covered their titles, the data areas had shrunk to ~20 px and the
    2D map to ~40 px; now a legend moves under its title where both do not fit on one line, the plots keep a
    readable height (the tab scrolls), and the landscape controls scroll above a map of full height."""
    from wmstudio.gui.landscape_view import MIN_PLOT_PX
    from wmstudio.gui.series_view import MIN_ROW_PX

    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(800, 550)
    win.show()
    show_synthetic_run(win)
    settle(qtbot, win)
    mv = win.tabs.metrics_view
    for plot in (mv.acc, mv.loss, mv.pval):
        title = plot.titleLabel.mapRectToScene(plot.titleLabel.item.mapRectToParent(plot.titleLabel.item.boundingRect()))
        legend = plot.legend.mapRectToScene(plot.legend.boundingRect())
        assert not title.intersects(legend), (plot.titleLabel.text, title, legend)
        assert plot.legend.mapRectToScene(plot.legend.boundingRect()).bottom() <= plot.vb.sceneBoundingRect().top() + 1
    assert mv.layout_widget.height() >= 3 * MIN_ROW_PX
    assert min(p.vb.height() for p in (mv.acc, mv.loss)) >= 90
    # no plot is wider than the view (the p-value plot's long title had held them wider: steps cut off)
    assert mv.layout_widget.width() <= mv.scroll.viewport().width()
    for plot in (mv.acc, mv.loss, mv.pval):
        assert plot.sceneBoundingRect().right() <= mv.layout_widget.viewport().width() + 1, plot.sceneBoundingRect()
    dv = win.tabs.drift_view
    assert all(p.sceneBoundingRect().right() <= dv.layout_widget.viewport().width() + 1 for p in (dv.l2, dv.cos, dv.heat))
    win.resize(1450, 950)  # room again: each legend back on its title's line
    qtbot.waitUntil(lambda: not any(p.legend_fit.below for p in (mv.acc, mv.loss, mv.pval)))
    win.resize(800, 550)
    win.tabs.setCurrentWidget(win.tabs.landscape_view)
    qtbot.waitUntil(lambda: win.tabs.landscape_view.tabs.height() >= MIN_PLOT_PX)


def test_a_run_that_has_not_evaluated_yet_is_not_called_no_run(qtbot) -> None:
    """During a Neural Cleanse run (it evaluates at its end) Metrics said "No run to show: open a run log"."""
    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.metrics_view import MetricsView

    for cls in (MetricsView, DriftView):
        view = cls()
        qtbot.addWidget(view)
        view.note_rows(SimpleNamespace(eval_rows=[], train_steps=[], stages=["attack"]))
        assert view.empty.text() == view.WAITING and not view.empty.isHidden()
        view.note_rows(SimpleNamespace(eval_rows=[], train_steps=[], stages=[]))
        assert view.empty.text() == view.EMPTY
        view.note_rows(SimpleNamespace(eval_rows=[1], train_steps=[], stages=["attack"]))
        assert view.empty.isHidden()
