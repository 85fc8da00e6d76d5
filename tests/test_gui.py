"""The desktop app, driven by clicks (pytest-qt, offscreen Qt platform)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from gui_helpers import curve_data, export_plots, make_window, menu_action, open_log, settle
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QMessageBox

from wmstudio.config_io import load_config
from wmstudio.gui.series import RunSeries
from wmstudio.landscape import LandscapeSpec, compute_landscape
from wmstudio.pipeline import run_experiment
from wmstudio.resources import example_config
from wmstudio.runlog_reader import RunLogReader

RUN_TIMEOUT = 180_000


def _eval_series(log, column: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for rec in RunLogReader(log).stages():
        xs.append(rec.eval["global_step"])
        ys.append(rec.eval[column])
    return np.concatenate(xs).astype(float), np.concatenate(ys)


def test_invalid_settings_are_flagged_at_the_field(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    assert win.setup.form.error is None and win.run_panel.run_button.isEnabled()
    lr = win.setup.form.widget("embed.lr")
    lr.clear()
    qtbot.keyClicks(lr, "-0.5")
    assert win.setup.form.error is not None and win.setup.form.error.field == "embed.lr"
    assert "border" in lr.styleSheet() and "embed.lr" in win.setup.validation_label.text()
    assert not win.run_panel.run_button.isEnabled()
    lr.clear()
    qtbot.keyClicks(lr, "fast")
    assert win.setup.form.error.field == "embed.lr" and "expected a number" in str(win.setup.form.error)
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    assert not win.busy  # nothing ran
    lr.clear()
    qtbot.keyClicks(lr, "0.05")
    assert win.setup.form.error is None and lr.styleSheet() == "" and win.run_panel.run_button.isEnabled()
    # cross-field rules of the engine are flagged too
    win.setup.form.set_value("trigger.scheme", "folder")
    win.setup.form.revalidate()
    assert win.setup.form.error.field == "trigger.folder"
    # every setting has a tooltip from the config schema
    assert all(w.toolTip() for w in win.setup.form.widgets.values())


def test_run_the_pipeline_and_plots_hold_the_engine_series(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    assert win.ctl.busy and not win.run_panel.run_button.isEnabled() and win.run_panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    log = win.ctl.log_path
    reader = RunLogReader(log)
    assert reader.status == "finished" and reader.stage_names() == ["embed", "finetune", "restore"]
    for column in ("trigger_acc", "test_acc", "test_loss", "trigger_loss"):
        x, y = curve_data(win.tabs.metrics_view.curves[column])
        ex, ey = _eval_series(log, column)
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_allclose(y, ey)
    x, y = curve_data(win.tabs.drift_view.curves["drift_l2"])
    np.testing.assert_allclose(y, _eval_series(log, "drift_l2")[1])
    steps, loss = curve_data(win.tabs.metrics_view.curves["train_loss"])
    assert len(steps) == sum(len(r.train["loss"]) for r in reader.stages())
    # the per-layer heat map: layers x evaluations
    n_eval = sum(len(r.eval["global_step"]) for r in reader.stages())
    assert win.tabs.drift_view.matrix.shape == (len(reader.stage("embed").layer_names), n_eval)
    win.tabs.setCurrentWidget(win.tabs.drift_view)
    win.tabs.drift_view.set_per_stage(True)
    shown = win.tabs.drift_view.shown  # scaled within each stage: every stage's block peaks at 1
    stage_of = np.asarray([r["stage"] for r in win.ctl.series.eval_rows])
    for k in range(3):
        assert shown[:, stage_of == k].max() == pytest.approx(1.0)
    ft = win.tabs.drift_view.matrix[:, stage_of == 1]
    np.testing.assert_allclose(shown[:, stage_of == 1], ft / ft.max())
    assert len(win.tabs.metrics_view.marks[0].lines) == 3  # stage boundaries
    assert win.run_panel.progress.value() == win.run_panel.progress.maximum()
    assert win.setup.trigger_grid.count > 0 and "content" in win.setup.trigger_grid.caption.text()
    assert win.tabs.compare_view.runs and win.tabs.compare_view.runs[0].log_path == str(log)
    assert str(log) in win.state.recent_files()
    assert "cpu" in win.run_panel.device_label.text().lower() or "cuda" in win.run_panel.device_label.text().lower()


def test_pause_and_resume(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("embed.epochs", 40)
    win.setup.form.set_value("finetune.enabled", False)
    win.setup.form.set_value("restore.enabled", False)
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.ctl.series.last_step >= 5, timeout=RUN_TIMEOUT)
    qtbot.mouseClick(win.run_panel.pause_button, Qt.MouseButton.LeftButton)
    assert win.run_panel.pause_button.isChecked() and win.run_panel.pause_button.text() == "Resume"
    # that nothing trains while paused shows only over time: the one fixed wait a test here keeps on purpose
    qtbot.wait(600)  # the batch under way when Pause was pressed ends and its events arrive
    held = win.ctl.series.last_step
    qtbot.wait(800)
    assert win.ctl.series.last_step == held  # nothing trains while paused
    assert win.ctl.busy
    line, value = win.run_panel.progress_label.text(), win.run_panel.progress.value()
    win.switch_theme("dark")  # a theme switch while paused set the line to "starting…", the bar to 0
    after = win.run_panel.progress_label.text(), win.run_panel.progress.value()
    qtbot.mouseClick(win.run_panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.ctl.series.last_step > held, timeout=30_000)
    qtbot.mouseClick(win.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    assert "paused" in line and value > 0 and after == (line, value)  # asserted once the run has ended


def test_cancel_mid_stage_keeps_a_readable_log(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("finetune.epochs", 30)
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(s.name == "finetune" for s in win.ctl.series.stages) and win.ctl.series.last_step > 60,
                    timeout=RUN_TIMEOUT)
    qtbot.mouseClick(win.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    reader = RunLogReader(win.ctl.log_path)
    assert reader.status == "cancelled"
    ft = reader.stage("finetune")
    assert ft.status == "cancelled" and ft.has_weights and len(ft.eval["trigger_acc"]) >= 1
    assert reader.stage("embed").status == "finished"
    assert "restore" not in reader.stage_names()
    assert win.run_panel.run_button.isEnabled() and not win.run_panel.cancel_button.isEnabled()
    assert "cancelled" in win.run_panel.progress_label.text()


def test_run_one_stage_continues_from_the_previous_log(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.run_panel.stages_combo.setCurrentIndex(4)  # restore only, with no log shown: refused, nothing runs
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    assert not win.busy and win.ctl.log_path is None
    assert "Not started" in win.statusBar().currentMessage() and "no log is shown" in win.statusBar().currentMessage()
    win.run_panel.stages_combo.setCurrentIndex(1)  # embed only
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    first = win.ctl.log_path
    assert RunLogReader(first).stage_names() == ["embed"]
    win.run_panel.stages_combo.setCurrentIndex(2)  # fine-tune only: starts from the embed weights of that log
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    second = RunLogReader(win.ctl.log_path)
    assert win.ctl.log_path != first and second.stage_names() == ["finetune"]
    cfg = load_config_from_log(second)
    assert cfg.model.checkpoint == f"{first}:embed"
    start = second.stage("finetune").eval["trigger_acc"][0]
    assert start == pytest.approx(RunLogReader(first).stage("embed").final("trigger_acc"))


def load_config_from_log(reader: RunLogReader):  # noqa: ANN201
    from wmstudio.config_io import config_from_json

    return config_from_json(reader.config_json)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list:
    out = []
    for lr in (0.015, 0.04):
        p = tmp_path_factory.mktemp("runs") / f"lr{lr}.h5"
        cfg = load_config(example_config("demo"), ["run.threads=2", "embed.epochs=8", f"finetune.lr={lr}",
                                                   "finetune.epochs=3", "restore.epochs=3", f"run.name='lr {lr}'"])
        run_experiment(cfg, p)
        out.append(p)
    compute_landscape(out[0], LandscapeSpec(kind="plane", resolution=7, images=200))
    compute_landscape(out[0], LandscapeSpec(kind="line", resolution=4, images=200))
    return out


def test_open_saved_logs_and_compare_runs(qtbot, tmp_path, two_runs) -> None:
    win = make_window(qtbot, tmp_path)
    for p in two_runs:
        open_log(qtbot, win, p)
    cv = win.tabs.compare_view
    assert len(cv.runs) == 2 and len(cv.curves) == 2
    for p in two_runs:
        x, y = curve_data(cv.curves[str(p)])
        np.testing.assert_allclose(y, _eval_series(p, "trigger_acc")[1])
    assert cv.table.rowCount() == 2 and cv.table.item(1, 0).text() == "lr 0.04"
    cv.metric_box.setCurrentIndex(cv.metric_box.findData("drift_l2"))
    np.testing.assert_allclose(curve_data(cv.curves[str(two_runs[1])])[1], _eval_series(two_runs[1], "drift_l2")[1])
    cv.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert list(cv.curves) == [str(two_runs[1])]
    # the window shows the last opened log: its stored landscapes are listed
    assert win.ctl.log_path == two_runs[1]
    open_log(qtbot, win, two_runs[0])
    assert win.tabs.landscape_view.stored.count() == 2


def test_export_plots_csv_and_log(qtbot, tmp_path, two_runs, monkeypatch) -> None:
    win = make_window(qtbot, tmp_path)
    open_log(qtbot, win, two_runs[0])
    lv = win.tabs.landscape_view
    assert lv.ls is not None
    written = export_plots(win, tmp_path / "figs")
    names = {p.name for p in written}
    shown = "landscape_2d" if lv.ls.is_2d else "landscape_path"  # the shown landscape's view, not the other
    for base in ("accuracy", "loss", "p_value", "drift_l2", "layer_drift", shown, "compare"):
        assert f"{base}.png" in names and f"{base}.svg" in names
    assert not ({"landscape_2d.png", "landscape_path.png"} - {f"{shown}.png"}) & names
    for p in written:
        assert p.stat().st_size > 500
        if p.suffix == ".png":
            img = QImage(str(p))
            assert not img.isNull() and img.width() >= 800
        else:
            assert "<svg" in p.read_text()[:2000]
    csv_path = tmp_path / "metrics.csv"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(csv_path), ""))
    menu_action(win, "Export metrics as CSV…").trigger()
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("stage,global_step") and len(lines) == 1 + len(win.ctl.series.eval_rows)
    row = lines[1].split(",")
    assert row[1].isdigit() and row[2].isdigit()  # global step and (whole) epoch as integers
    assert str(csv_path) in win.statusBar().currentMessage()  # the export says what it wrote where
    log_copy = tmp_path / "copy.h5"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(log_copy), ""))
    menu_action(win, "Save run log as…").trigger()
    assert RunLogReader(log_copy).stage_names() == ["embed", "finetune", "restore"]
    assert str(log_copy) in win.statusBar().currentMessage()


def test_landscape_computed_in_the_app_fills_in_and_matches_the_log(qtbot, tmp_path, two_runs) -> None:
    log = shutil.copy(two_runs[1], tmp_path / "run.h5")
    win = make_window(qtbot, tmp_path)
    open_log(qtbot, win, log)
    lv = win.tabs.landscape_view
    lv.kind.setCurrentText("random")
    lv.resolution.setValue(13)
    lv.images.setValue(200)
    seen: list[int] = []
    original = lv.apply_events

    def spy(events):  # noqa: ANN001, ANN202
        original(events)
        if lv.ls is not None:
            seen.append(int(lv.ls.done.sum()))

    lv.apply_events = spy
    qtbot.mouseClick(lv.compute_button, Qt.MouseButton.LeftButton)
    assert lv.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    assert lv.ls.complete and lv.ls.name == "random-13-200img"  # images other than the default: in the name
    assert len(set(seen)) >= 2  # filled in over several redraws
    from wmstudio.landscape import read

    stored = read(log, "random-13-200img")
    np.testing.assert_allclose(lv.ls.metrics["trigger_loss"], stored.metrics["trigger_loss"])
    np.testing.assert_allclose(lv.image.image, stored.metrics["trigger_loss"])  # what is drawn
    lv.metric_box.setCurrentIndex(lv.metric_box.findData("test_acc"))
    np.testing.assert_allclose(lv.image.image, stored.metrics["test_acc"])
    lv.show_landscape(read(log, "random-13-200img"))
    # hover shows the values under the mouse
    lv.map_panel.hover_at((lv.map.vb.mapViewToScene(pg_point(0.0, 0.0)),))
    assert "trigger-set loss" in lv.hover.text()


def pg_point(x: float, y: float):  # noqa: ANN201
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_line_landscape_shows_the_path(qtbot, tmp_path, two_runs) -> None:
    win = make_window(qtbot, tmp_path)
    open_log(qtbot, win, two_runs[0])
    from wmstudio.landscape import read

    line = read(two_runs[0], "line")
    win.tabs.landscape_view.show_landscape(line)
    assert win.tabs.landscape_view.tabs.currentIndex() == 2
    x, y = curve_data(win.tabs.landscape_view.path_curves["trigger_loss"])
    np.testing.assert_allclose(y, line.metrics["trigger_loss"])
    assert len(win.tabs.landscape_view.path_lines) == 6  # three checkpoints on two plots


def test_3d_tab_without_opengl_says_so(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    lv = win.tabs.landscape_view
    lv.tabs.setCurrentIndex(1)
    assert lv.gl_view is None
    texts = [w.text() for w in lv.surface_page.findChildren(QLabel)]
    assert any("needs OpenGL" in t for t in texts)


def test_closing_during_a_run_asks_then_cancels_and_keeps_the_log(qtbot, tmp_path, monkeypatch) -> None:
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("embed.epochs", 60)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.ctl.series.last_step >= 3, timeout=RUN_TIMEOUT)
    assert not win.close() and asked and win.ctl.busy  # "No": keeps running
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    start = time.perf_counter()
    win.close()  # returns at once: the window hides and closes for good once the run has stopped
    assert time.perf_counter() - start < 1 and not win.isVisible()
    qtbot.waitUntil(lambda: not win.busy, timeout=60_000)
    reader = RunLogReader(win.ctl.log_path)
    assert reader.status == "cancelled" and reader.stage("embed").has_weights
    assert RunSeries.from_log(win.ctl.log_path).eval_rows


def test_config_files_round_trip_and_bad_files_are_reported(qtbot, tmp_path, monkeypatch) -> None:
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("finetune.lr", 0.123)
    win.setup.form.set_value("trigger.scheme", "noise")
    win.setup.form.revalidate()
    path = tmp_path / "exp.toml"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(path), ""))
    win.setup.save_config_dialog()
    cfg = load_config(path)
    assert cfg.finetune.lr == 0.123 and cfg.trigger.scheme == "noise"
    win.setup.load_demo_config()
    assert win.setup.form.config().finetune.lr != 0.123
    assert win.setup.load_config_file(path) and win.setup.form.config().finetune.lr == 0.123
    bad = tmp_path / "bad.toml"
    bad.write_text("[embed]\nlr = -3\n")
    assert not win.setup.load_config_file(bad)
    assert "embed.lr" in win.last_error.text()
    assert win.last_error.informativeText()


def test_settings_remember_layout_and_recent_files(qtbot, tmp_path, two_runs) -> None:
    win = make_window(qtbot, tmp_path)
    open_log(qtbot, win, two_runs[0])
    win.show()
    win.resize(1301, 851)
    settle(qtbot, win)
    win.close()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    for key in ("geometry", "window_state", "splitter"):  # the layout is saved on close ...
        assert settings.value(key) is not None and len(settings.value(key)) > 0
    from wmstudio.gui.main_window import MainWindow

    again = MainWindow(tmp_path / "runs", settings)
    qtbot.addWidget(again)
    again.show()
    settle(qtbot, again)
    assert again.state.recent_files()[0] == str(two_runs[0])
    assert again.recent_menu.actions()[0].text() == str(two_runs[0])
    assert again.splitter.saveState() == settings.value("splitter")  # ... and restored


def test_trigger_preview_shows_thumbnails(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("trigger.scheme", "abstract")
    win.setup.form.set_value("trigger.size", 20)
    win.setup.form.revalidate()
    qtbot.mouseClick(win.setup.preview_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.setup.trigger_grid.count == 20, timeout=60_000)
    assert "abstract, 20 images" in win.setup.trigger_grid.caption.text()


def test_an_opened_log_that_is_not_a_run_log_is_reported(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with qtbot.waitSignal(win.log_failed, timeout=30_000):
        win.open_log(junk)
    assert "junk.h5" in win.last_error.text()


def test_a_log_the_cli_is_still_writing_is_followed(qtbot, tmp_path) -> None:
    import subprocess
    import sys

    log = tmp_path / "cli.h5"
    proc = subprocess.Popen([sys.executable, "-m", "wmstudio", "demo", "--out", str(log), "--quiet",
                             "--set", "embed.epochs=30", "--set", "run.threads=1"])
    try:
        def started() -> bool:
            try:
                return bool(RunLogReader(log).stage_names()) and len(RunSeries.from_log(log).eval_rows) >= 2
            except Exception:  # noqa: BLE001 - not created or between commits yet
                return False

        qtbot.waitUntil(started, timeout=120_000)
        win = make_window(qtbot, tmp_path)
        open_log(qtbot, win, log)
        assert win.loader.timer.isActive()
        first = len(win.ctl.series.eval_rows)
        qtbot.waitUntil(lambda: len(win.ctl.series.eval_rows) > first, timeout=60_000)  # grows while it runs
        assert proc.wait(timeout=180) == 0
        qtbot.waitUntil(lambda: not win.loader.timer.isActive(), timeout=10_000)
        assert len(win.ctl.series.eval_rows) == len(RunSeries.from_log(log).eval_rows)
        x, y = curve_data(win.tabs.metrics_view.curves["trigger_acc"])
        np.testing.assert_allclose(y, _eval_series(log, "trigger_acc")[1])
    finally:
        proc.kill()


def test_dark_theme_applies(qapp) -> None:  # noqa: ANN001
    from wmstudio.gui import theme

    try:
        assert theme.apply(qapp, "dark") == "dark"
        assert qapp.palette().window().color().lightness() < 128
    finally:
        assert theme.apply(qapp, "light") == "light"
    assert qapp.palette().window().color().lightness() > 128


def test_sweep_view_shows_the_matrix_and_opens_a_run(qtbot, tmp_path) -> None:
    from wmstudio.sweep import expand, run_sweep

    base = load_config(example_config("demo")).to_dict()
    base["embed"]["epochs"], base["finetune"]["epochs"], base["restore"]["epochs"] = 5, 1, 1
    spec = expand("gui", base, {"finetune.lr": [0.01, 0.03], "restore.lr": [0.003]})
    run_sweep(spec, tmp_path / "sweep", workers=2)
    win = make_window(qtbot, tmp_path)
    sv = win.tabs.sweep_view
    with qtbot.waitSignal(sv.refreshed, timeout=60_000) as read:  # the folder is read on a worker
        assert sv.open_folder(tmp_path / "sweep")
    assert read.args == [True]
    assert sv.table.rowCount() == 2 and sv.table.columnCount() == 1
    from wmstudio.sweep.report import collect

    _, _, rows = collect(tmp_path / "sweep")
    by_lr = {r["finetune.lr"]: r["restore.trigger_acc"] for r in rows}
    assert float(sv.table.item(0, 0).text().split()[0]) == pytest.approx(by_lr[0.01], abs=1e-3)
    with qtbot.waitSignal(win.log_opened, timeout=60_000):
        sv.table.cellClicked.emit(1, 0)
    run = next(r for r in rows if r["finetune.lr"] == 0.03)
    assert win.ctl.log_path == tmp_path / "sweep" / "runs" / f"{run['run_id']}.h5"
    assert win.tabs.currentWidget() is win.tabs.metrics_view and win.ctl.series.eval_rows


def test_published_landscape_is_one_click(qtbot, tmp_path, two_runs) -> None:
    log = shutil.copy(two_runs[0], tmp_path / "run.h5")
    win = make_window(qtbot, tmp_path)
    open_log(qtbot, win, log)
    lv = win.tabs.landscape_view
    lv.resolution.setValue(7)
    lv.images.setValue(100)
    qtbot.mouseClick(lv.published_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    assert lv.ls.name == "published-100img" and lv.ls.kind == "pca" and lv.ls.complete
    assert lv.ls.spec.models == ["finetune", "restore"] and lv.ls.spec.center == "restore"
    assert lv.metric_box.currentData() == "trigger_loss"
    assert lv.ls.model_coords[-1] == pytest.approx([0, 0], abs=1e-6)  # centred on the restored model
    assert {"finetune", "restore"} <= set(lv.ls.trajectories)
