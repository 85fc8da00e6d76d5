"""The main window: experiment setup, run controls, live plots, landscapes, comparison, export."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QGroupBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wmstudio.config import load_config, save_config
from wmstudio.device import describe, resolve_device
from wmstudio.errors import WmStudioError
from wmstudio.events import (
    Error,
    Event,
    LandscapeFinished,
    LandscapePoints,
    LandscapeStarted,
    Metrics,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    Step,
    Warning,
)
from wmstudio.gui.checkpoint_panel import CheckpointPanel
from wmstudio.gui.compare_view import CompareView
from wmstudio.gui.config_form import ConfigForm
from wmstudio.gui.dialogs import error_box
from wmstudio.gui.export import export_all
from wmstudio.gui.landscape_view import LandscapeMeta, LandscapeView
from wmstudio.gui.metrics_view import DriftView, MetricsView
from wmstudio.gui.series import RunSeries
from wmstudio.gui.sweep_view import SweepView
from wmstudio.gui.trigger_preview import TriggerGrid
from wmstudio.gui.uiload import load_form
from wmstudio.gui.worker import JobThread
from wmstudio.resources import example_config

STAGE_CHOICES = [("All enabled stages", None), ("Embed only", ["pretrain", "embed"]),
                 ("Fine-tune only (the attack)", ["finetune"]), ("Restore only", ["restore"])]
PREVIOUS_STAGE = {"finetune": "embed", "restore": "finetune"}
DRAIN_MS = 50  # the UI takes engine events every 50 ms ...
REDRAW_S = 0.09  # ... and redraws the visible plots at about 10 Hz (hidden ones when they are shown)
MAX_RECENT = 8


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "run"


class MainWindow(QMainWindow):
    def __init__(self, runs_dir: str | Path | None = None, settings: QSettings | None = None,
                 mode: str = "light") -> None:
        super().__init__()
        self.settings = settings or QSettings("wmstudio", "Watermark Studio")
        self.runs_dir = Path(runs_dir or self.settings.value("runs_dir", str(Path.home() / "wmstudio-runs")))
        self.mode = mode
        self.setWindowTitle("Watermark Studio")
        self.job: JobThread | None = None
        self.job_kind = ""
        self.series = RunSeries()
        self.log_path: Path | None = None
        self.stage_clock: tuple[float, int] = (time.perf_counter(), 0)
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(1000)
        self.follow_timer.timeout.connect(self._follow_log)

        self.content = load_form("main_window.ui")
        self.setCentralWidget(self.content)
        self.content.layout().setStretch(0, 1)
        f = self.content.findChild
        self.splitter = f(QWidget, "splitter")
        self.tabs = f(QWidget, "viewTabs")
        self.run_button: QPushButton = f(QPushButton, "runButton")
        self.pause_button: QPushButton = f(QPushButton, "pauseButton")
        self.cancel_button: QPushButton = f(QPushButton, "cancelButton")
        self.stages_combo = f(QWidget, "stagesCombo")
        self.progress: QProgressBar = f(QProgressBar, "progressBar")
        self.progress_label: QLabel = f(QLabel, "progressLabel")
        self.device_label: QLabel = f(QLabel, "deviceLabel")
        self.validation_label: QLabel = f(QLabel, "validationLabel")
        for text, _ in STAGE_CHOICES:
            self.stages_combo.addItem(text)

        host = f(QWidget, "setupHost").layout()
        self.form = ConfigForm()
        host.addWidget(self.form)
        trig_box = QGroupBox("Trigger set preview")
        tb = QVBoxLayout(trig_box)
        self.trigger_grid = TriggerGrid()
        self.preview_button = QPushButton("Preview trigger set")
        self.preview_button.setToolTip("Build the trigger set these settings describe and show it (nothing is trained)")
        tb.addWidget(self.preview_button)
        tb.addWidget(self.trigger_grid)
        self.checkpoint_panel = CheckpointPanel()
        self.checkpoint_panel.attach(self.form)
        host.addWidget(self.checkpoint_panel)
        host.addWidget(trig_box)
        host.addStretch(1)

        self.metrics_view = MetricsView(mode)
        self.drift_view = DriftView(mode)
        self.landscape_view = LandscapeView()
        self.compare_view = CompareView()
        self.sweep_view = SweepView()
        self.log_text = QPlainTextEdit()
        self.log_text.setReadOnly(True)
        self.log_text.setMaximumBlockCount(5000)
        for w, name in ((self.metrics_view, "Metrics"), (self.drift_view, "Weight drift"),
                        (self.landscape_view, "Loss landscape"), (self.compare_view, "Compare runs"),
                        (self.sweep_view, "Sweep"), (self.log_text, "Messages")):
            self.tabs.addTab(w, name)

        self._make_actions()
        self.run_button.clicked.connect(self.start_run)
        self.pause_button.toggled.connect(self.set_paused)
        self.cancel_button.clicked.connect(self.cancel)
        self.form.changed.connect(self._on_form_changed)
        self.preview_button.clicked.connect(self.preview_triggers)
        f(QPushButton, "loadConfigButton").clicked.connect(self.load_config_dialog)
        f(QPushButton, "saveConfigButton").clicked.connect(self.save_config_dialog)
        f(QPushButton, "demoConfigButton").clicked.connect(self.load_demo_config)
        self.landscape_view.compute_requested.connect(self.compute_landscape)
        self.landscape_view.stop_requested.connect(self.cancel)
        self.landscape_view.landscape_selected.connect(self.show_stored_landscape)
        self.sweep_view.open_run.connect(self._open_sweep_run)
        self._last_redraw = 0.0
        self.tabs.currentChanged.connect(lambda _i: self.redraw_visible())
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)
        self.timer.start()
        self.statusBar().showMessage("Ready")
        self.load_demo_config()
        self._restore_layout()
        self._on_form_changed()

    # ================================================================ actions and menus
    def _make_actions(self) -> None:
        def act(menu: Any, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip or text)
            a.setToolTip(tip or text)
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        mb = self.menuBar()
        fm = mb.addMenu("&File")
        act(fm, "&Load config…", self.load_config_dialog, "Ctrl+L", "Load an experiment config (TOML/JSON)")
        act(fm, "&Save config…", self.save_config_dialog, QKeySequence.StandardKey.Save, "Save the settings as TOML")
        fm.addSeparator()
        self.open_action = act(fm, "&Open run log…", self.open_log_dialog, QKeySequence.StandardKey.Open,
                               "Open an HDF5 run log (also one still being written)")
        self.recent_menu = fm.addMenu("Open &recent")
        act(fm, "Save run log &as…", self.save_log_as, "Ctrl+Shift+S", "Copy the current run log anywhere")
        act(fm, "Export metrics as &CSV…", self.export_csv, "Ctrl+Shift+C", "Every evaluation row as CSV")
        act(fm, "&Export all plots…", self.export_plots_dialog, "Ctrl+E", "Every plot as PNG and SVG into a folder")
        self.export_3d_action = act(fm, "Export &3D view…", self.export_3d_dialog, None,
                                    "The 3D surface as a PNG of a chosen size (once a 2D landscape is shown in 3D)")
        fm.aboutToShow.connect(lambda: self.export_3d_action.setEnabled(self.landscape_view.has_3d))
        act(fm, "Set runs &folder…", self.choose_runs_dir, None, "Where new run logs are written")
        fm.addSeparator()
        act(fm, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        rm = mb.addMenu("&Run")
        self.run_action = act(rm, "&Run", self.start_run, "Ctrl+R", "Run the selected stages")
        self.pause_action = act(rm, "&Pause / resume", lambda: self.pause_button.toggle(), "Ctrl+P",
                                "Pause after the current batch, or resume")
        self.cancel_action = act(rm, "&Cancel", self.cancel, "Ctrl+.", "Cancel after the current batch")
        act(rm, "Preview &trigger set", self.preview_triggers, "Ctrl+T")
        vm = mb.addMenu("&View")
        for i in range(6):
            act(vm, self.tabs.tabText(i), lambda _=False, k=i: self.tabs.setCurrentIndex(k), f"Ctrl+{i + 1}")
        vm.addSeparator()
        themes = vm.addMenu("&Theme")
        for name in ("system", "light", "dark"):
            act(themes, name.capitalize(), lambda _=False, t=name: self.set_theme(t), None,
                f"{name} theme (system follows the desktop); applies to new plots at once, all after a restart")
        hm = mb.addMenu("&Help")
        act(hm, "&About Watermark Studio", self.about)
        tb = self.addToolBar("Run")
        tb.setObjectName("runToolbar")
        for a in (self.run_action, self.pause_action, self.cancel_action, self.open_action):
            tb.addAction(a)
        self._rebuild_recent()

    def set_theme(self, name: str) -> None:
        from wmstudio.gui import theme

        self.settings.setValue("theme", name)
        self.mode = theme.apply(QApplication.instance(), name)
        self.statusBar().showMessage(f"Theme: {name} ({self.mode}); plots take it fully after a restart", 6000)

    def about(self) -> None:
        import wmstudio

        QMessageBox.about(self, "Watermark Studio", f"<b>Watermark Studio</b> {wmstudio.__version__}<br>"
                          "Embed, attack and restore trigger-set watermarks; watch them in the loss landscape.")

    # ================================================================ settings
    def _restore_layout(self) -> None:
        geo = self.settings.value("geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1440, 900)
        state = self.settings.value("window_state")
        if state is not None:
            self.restoreState(state)
        split = self.settings.value("splitter")
        if split is not None:
            self.splitter.restoreState(split)
        else:
            self.splitter.setSizes([380, 1060])

    def _save_layout(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.settings.setValue("runs_dir", str(self.runs_dir))
        self.settings.sync()

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue("recent_files", items[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent_files():
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self.open_log(path))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # ================================================================ config
    def load_demo_config(self) -> None:
        self.form.set_config(load_config(example_config("demo")))
        self.statusBar().showMessage("Settings: the built-in demo (digits, no download)", 5000)

    def load_config_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load config", "", "Configs (*.toml *.json);;All files (*)")
        if path:
            self.load_config_file(path)

    def load_config_file(self, path: str | Path) -> bool:
        try:
            self.form.set_config(load_config(path))
        except WmStudioError as exc:
            self.show_error("Cannot load the config", str(exc))
            return False
        self.statusBar().showMessage(f"Loaded {path}", 5000)
        return True

    def save_config_dialog(self) -> None:
        if self.form.error is not None:
            self.form.reveal_error()
            self.show_error("The settings are not valid", str(self.form.error))
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save config", "experiment.toml", "TOML (*.toml)")
        if path:
            save_config(self.form.config(), path)
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def _on_form_changed(self) -> None:
        err = self.form.error
        self.validation_label.setText("" if err is None else f"<span style='color:#d9534f'>⚠ {err}</span>")
        self._update_buttons()
        if err is None and self.job is None:
            try:
                self.device_label.setText(describe(resolve_device(self.form.config().run.device)))
            except WmStudioError as exc:
                self.device_label.setText(str(exc))

    # ================================================================ running
    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.isRunning()

    def _update_buttons(self) -> None:
        running = self.job is not None
        can_run = not running and self.form.error is None
        self.run_button.setEnabled(can_run)
        self.run_action.setEnabled(can_run)
        self.pause_button.setEnabled(running and self.job_kind == "run")
        self.cancel_button.setEnabled(running)
        self.landscape_view.set_computing(running and self.job_kind == "landscape")
        self.landscape_view.compute_button.setEnabled(not running and self.log_path is not None)
        self.landscape_view.published_button.setEnabled(not running and self.log_path is not None)

    def start_run(self) -> Path | None:
        if self.job is not None:
            return None
        if self.form.error is not None:
            self.form.reveal_error()
            self.statusBar().showMessage(f"Not started: {self.form.error}", 8000)
            return None
        cfg = self.form.config()
        stages = STAGE_CHOICES[self.stages_combo.currentIndex()][1]
        if stages and len(stages) == 1 and stages[0] in PREVIOUS_STAGE and not cfg.model.checkpoint:
            prev = PREVIOUS_STAGE[stages[0]]
            if self.log_path is not None and prev in [s.name for s in self.series.stages]:
                cfg.model.checkpoint = f"{self.log_path}:{prev}"
                self.message(f"{stages[0]} starts from the {prev} weights of {self.log_path.name}")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        out = self.runs_dir / f"{_slug(cfg.run.name)}-{time.strftime('%Y%m%d-%H%M%S')}.h5"
        n = 1
        while out.exists():
            out = out.with_name(f"{out.stem}-{n}.h5")
            n += 1
        from wmstudio.pipeline import run_experiment

        self.series = RunSeries(label=cfg.run.name)
        self.log_path = out
        self._reset_views()
        self.landscape_view.clear()  # the new log has no landscapes yet
        self._start_job("run", lambda cb, ctl: run_experiment(cfg, out, cb, ctl, stages))
        self.message(f"Run started → {out}")
        return out

    def _start_job(self, kind: str, job: Any) -> None:
        self.follow_timer.stop()
        self.job_kind = kind
        self.job = JobThread(job, kind, self)
        self.job.done.connect(self._job_done)
        self.job.failed.connect(self._job_failed)
        self.pause_button.setChecked(False)
        self.progress.setRange(0, 1)  # nothing left over from the previous job
        self.progress.setValue(0)
        self.progress_label.setText("starting…")
        self.job.start()
        self._update_buttons()

    def set_paused(self, paused: bool) -> None:
        if self.job is None:
            return
        if paused:
            self.job.control.pause()
            self.pause_button.setText("Resume")
            self.statusBar().showMessage("Paused after the current batch")
        else:
            self.job.control.resume()
            self.pause_button.setText("Pause")
            self.statusBar().showMessage("Resumed", 3000)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.control.cancel()
            self.statusBar().showMessage("Cancelling after the current batch…")

    def _finish_job(self) -> None:
        self.drain()
        if self.job_kind == "run":
            self._show_all(self.series)
        job = self.job
        self.job = None
        if job is not None:
            job.wait(5000)
        self.pause_button.setChecked(False)
        self.pause_button.setText("Pause")
        self._update_buttons()

    def _job_done(self, result: Any) -> None:
        kind = self.job_kind
        self._finish_job()
        if kind == "run":
            status = getattr(result, "status", "finished")
            self.progress_label.setText(f"{status}: {self.log_path.name if self.log_path else ''}")
            if status == "finished":
                self.progress.setValue(self.progress.maximum())
            self.statusBar().showMessage(f"Run {status}; log: {self.log_path}")
            self._after_run()
        else:
            status = getattr(result, "status", "finished")
            self._refresh_landscapes()
            ls = self.landscape_view.ls
            what = f"Landscape {ls.name}" if ls is not None else "Landscape"
            if ls is not None and ls.complete:
                self.progress.setRange(0, 1)
                self.progress.setValue(1)
            self.progress_label.setText(f"{what}: {status}")
            points = f": {int(ls.done.sum())}/{ls.done.size} points" if ls is not None else ""
            self.statusBar().showMessage(f"{what} {status}{points}")

    def _job_failed(self, message: str, details: str, user_error: bool) -> None:
        kind = self.job_kind
        self._finish_job()
        self.message(f"ERROR: {message}")
        self.progress_label.setText("failed")
        log = self.log_path if self.log_path is not None and self.log_path.exists() else None
        if kind == "run" and log is not None:
            self._after_run()
        self.show_error("The run failed" if kind == "run" else "The landscape failed", message, details, user_error,
                        log)

    def _after_run(self) -> None:
        if self.log_path is None or not self.log_path.exists():
            return
        self.series.log_path = str(self.log_path)
        self.compare_view.add_run(self.series)
        self._add_recent(self.log_path)
        self._show_log_trigger()
        self._refresh_landscapes()

    # ================================================================ events
    def drain(self) -> None:
        if self.job is None:
            return
        events = self.job.drain()
        if not events:
            return
        if self.job_kind == "landscape":
            self.landscape_view.apply_events(events)
            self._landscape_progress(events)
            return
        for e in events:
            self.series.apply(e)
            self._progress(e)
        now = time.perf_counter()
        if now - self._last_redraw >= REDRAW_S or any(isinstance(e, (StageFinished, RunFinished)) for e in events):
            self._last_redraw = now
            self.redraw_visible()

    def _landscape_progress(self, events: list[Any]) -> None:
        """The progress bar, its label and the status bar follow a landscape's points."""
        for e in events:
            if isinstance(e, LandscapePoints):
                self.progress.setRange(0, max(1, e.total))
                self.progress.setValue(e.done)
                text = f"Landscape {e.name}: level {e.level}, {e.done}/{e.total} points"
                self.progress_label.setText(text)
                self.statusBar().showMessage(text)
            elif isinstance(e, LandscapeFinished):
                self.progress_label.setText(f"Landscape {e.name}: {e.status}")

    def _reset_views(self) -> None:
        for view in (self.metrics_view, self.drift_view):
            view.revision = -1
            view.x_axis.reset()

    def _show_all(self, series: RunSeries) -> None:
        """Both views, with the x axis fitted to the data (a finished run or an opened log)."""
        for view in (self.metrics_view, self.drift_view):
            view.show_series(series)
            view.x_axis.fit(series.last_step or max((r["global_step"] for r in series.eval_rows), default=1))

    def redraw_visible(self) -> None:
        current = self.tabs.currentWidget()
        if current is self.metrics_view:
            self.metrics_view.show_series(self.series)
        elif current is self.drift_view:
            self.drift_view.show_series(self.series)

    def _progress(self, e: Event) -> None:
        if isinstance(e, RunStarted):
            self.device_label.setText(e.device)
            self.message(f"Run on {e.device}: stages {', '.join(e.stages)}")
        elif isinstance(e, StageStarted):
            self.stage_clock = (time.perf_counter(), 0)
            self.progress.setRange(0, max(1, e.epochs * e.steps_per_epoch))
            self.progress.setValue(0)
            self.message(f"Stage {e.stage}: {e.epochs} epochs × {e.steps_per_epoch} steps")
        elif isinstance(e, Step):
            start, _ = self.stage_clock
            elapsed = time.perf_counter() - start
            left = elapsed / max(e.step, 1) * (e.total_steps - e.step)
            self.progress.setValue(e.step)
            self.progress_label.setText(f"{e.stage} · epoch {e.epoch} · step {e.step}/{e.total_steps} · "
                                        f"loss {e.loss:.3f} · ~{left:.0f} s left in stage")
        elif isinstance(e, Metrics):
            v = e.values
            self.statusBar().showMessage(f"{e.stage} epoch {e.epoch:g}: test acc {v.get('test_acc', 0):.3f}, "
                                         f"trigger acc {v.get('trigger_acc', 0):.3f}")
        elif isinstance(e, StageFinished):
            self.message(f"Stage {e.stage} {e.status}" + (f": {e.message}" if e.message else ""))
        elif isinstance(e, Warning):
            self.message(f"Warning: {e.message}")
        elif isinstance(e, Error):
            self.message(f"Error: {e.message}")
        elif isinstance(e, RunFinished):
            self.message(f"Run {e.status}" + (f": {e.message}" if e.message else "") + f" — {e.log_path}")

    def message(self, text: str) -> None:
        self.log_text.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    # ================================================================ logs
    def open_log_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open run logs", str(self.runs_dir), "Run logs (*.h5 *.hdf5)")
        for p in paths:
            self.open_log(p)

    def open_log(self, path: str | Path) -> bool:
        path = Path(path)
        try:
            series = RunSeries.from_log(path)
        except (WmStudioError, OSError, KeyError) as exc:
            self.show_error("Cannot open the run log", f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            return False
        if self.job is None:
            if path != self.log_path:
                self.landscape_view.clear()  # the previous log's surfaces are not this one's
            self.series, self.log_path = series, path
            self._reset_views()
            self._show_all(series)
            self.device_label.setText(series.device)
            self._show_log_trigger()
            self._refresh_landscapes()
            self._update_buttons()
            # the progress row and status bar now speak of this log, not of the last job
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if series.log_status == "finished" else 0)
            self.progress_label.setText(f"opened: {path.name} ({series.log_status or 'unknown status'})")
            self.statusBar().showMessage(f"Opened {path}")
            if series.log_status == "running":
                self.follow_timer.start()
                self.statusBar().showMessage(f"{path.name} is still being written: following it")
        self.compare_view.add_run(series)
        self._add_recent(path)
        from wmstudio.inspect_log import summarize

        try:
            self.message(f"Opened {path}\n{summarize(str(path))}")
        except (WmStudioError, OSError, KeyError):
            self.message(f"Opened {path}")
        return True

    def _open_sweep_run(self, path: str) -> None:
        if self.open_log(path):
            self.tabs.setCurrentWidget(self.metrics_view)

    def _follow_log(self) -> None:
        """Reload a log that another process (the CLI) is writing, until it stops running."""
        if self.log_path is None or self.job is not None:
            self.follow_timer.stop()
            return
        try:
            series = RunSeries.from_log(self.log_path)
        except (WmStudioError, OSError, KeyError):
            return  # caught between commits: try again next tick
        series.revision = self.series.revision + 1
        self.series = series
        self._show_all(series)
        self.compare_view.add_run(series)
        if series.log_status != "running":  # read before the data: a finished status means all of it is in
            self.follow_timer.stop()
            self.statusBar().showMessage(f"{self.log_path.name}: {series.log_status}")

    def _show_log_trigger(self) -> None:
        from wmstudio.runlog import RunLogReader

        try:
            reader = RunLogReader(self.log_path)
            t = reader.trigger()
            classes = reader.data_info().get("classes")
        except (WmStudioError, OSError, KeyError):
            return
        self.trigger_grid.show_set(t["images"], t["labels"], str(t["scheme"]), classes, "from the run log")

    def _refresh_landscapes(self) -> None:
        from wmstudio.landscape import list_landscapes, read

        if self.log_path is None:
            return
        try:
            names = list_landscapes(self.log_path)
        except (WmStudioError, OSError):
            return
        current = self.landscape_view.ls.name if self.landscape_view.ls is not None else ""
        self.landscape_view.set_stored(names, current)
        if names and (self.landscape_view.ls is None or current not in names):
            self.landscape_view.show_landscape(read(self.log_path, names[0]))
        self._update_buttons()

    def show_stored_landscape(self, name: str) -> None:
        from wmstudio.landscape import read

        if self.log_path is not None and name and not self.busy:
            self.landscape_view.show_landscape(read(self.log_path, name))

    def compute_landscape(self, spec: Any) -> None:
        if self.job is not None or self.log_path is None:
            self.statusBar().showMessage("Open or run an experiment first", 5000)
            return
        from wmstudio.landscape import compute_landscape
        from wmstudio.landscape.store import read

        log = self.log_path

        def job(callback: Any, control: Any) -> Any:
            def relay(e: Event) -> None:
                callback(e)
                if isinstance(e, LandscapeStarted):  # the worker reads the new group; the UI never touches the file
                    callback(LandscapeMeta(read(log, e.name)))

            return compute_landscape(log, spec, relay, control)

        self.tabs.setCurrentWidget(self.landscape_view)
        self._start_job("landscape", job)
        self.statusBar().showMessage(f"Computing landscape {spec.name}…")

    # ================================================================ trigger preview
    def preview_triggers(self) -> None:
        if self.form.error is not None:
            self.form.reveal_error()
            return
        cfg = self.form.config()
        self.preview_button.setEnabled(False)
        self.trigger_grid.caption.setText("Building the trigger set…")
        from wmstudio.pipeline import preview_trigger_set

        thread = JobThread(lambda _cb, _ctl: preview_trigger_set(cfg), "preview", self)

        def shown(result: Any) -> None:
            ts, classes = result
            self.trigger_grid.show_set(ts.images.numpy(), ts.labels.numpy(), ts.scheme, classes,
                                       str(ts.params.get("preview_note", "")))
            self.preview_button.setEnabled(True)

        def failed(message: str, details: str, user_error: bool) -> None:
            self.trigger_grid.caption.setText(f"Cannot preview: {message}")
            self.preview_button.setEnabled(True)

        thread.done.connect(shown)
        thread.failed.connect(failed)
        thread.finished.connect(thread.deleteLater)
        self._preview_thread = thread
        thread.start()

    # ================================================================ export
    def all_plots(self) -> dict[str, Any]:
        plots = {**self.metrics_view.plots, **self.drift_view.plots}
        ls = self.landscape_view.ls
        if ls is not None and ls.done.any():
            if ls.is_2d:
                plots["landscape_2d"] = self.landscape_view.map
            else:
                plots["landscape_path"] = self.landscape_view.path_widget.ci
        if self.compare_view.runs:
            plots["compare"] = self.compare_view.plot
        return plots

    def export_plots(self, folder: str | Path) -> list[Path]:
        written = export_all(self.all_plots(), folder)
        if self.landscape_view.has_3d:
            p = Path(folder) / "landscape_3d.png"
            if self.landscape_view.export_3d(str(p)):
                written.append(p)
        return written

    def export_plots_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export all plots into", str(self.runs_dir))
        if folder:
            try:
                written = self.export_plots(folder)
            except (OSError, ValueError) as exc:
                self.show_error("Export failed", str(exc))
                return
            self.statusBar().showMessage(f"Exported {len(written)} files to {folder}", 8000)

    def export_3d_dialog(self) -> None:
        if not self.landscape_view.has_3d:
            self.show_error("No 3D view", "Show a 2D landscape in the 3D surface tab first "
                            f"({self.landscape_view.gl_reason or 'OpenGL is available'}).")
            return
        from PySide6.QtWidgets import QInputDialog

        size, ok = QInputDialog.getText(self, "Export 3D view", "Size in pixels (width x height):", text="1600x1200")
        if not ok:
            return
        m = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", size)
        if not m:
            self.show_error("Export 3D view", f"size: expected WIDTHxHEIGHT such as 1600x1200, got {size!r}")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export 3D view", "landscape_3d.png", "PNG (*.png)")
        if path and self.landscape_view.export_3d(path, (int(m[1]), int(m[2]))):
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def export_csv(self) -> None:
        if not self.series.eval_rows:
            self.statusBar().showMessage("No metrics yet", 4000)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if path:
            self.series.to_csv(path)
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def save_log_as(self) -> None:
        if self.log_path is None:
            self.statusBar().showMessage("No run log yet", 4000)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save run log as", self.log_path.name, "Run logs (*.h5)")
        if path:
            shutil.copy2(self.log_path, path)
            self.statusBar().showMessage(f"Copied the log to {path}", 5000)

    def choose_runs_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", str(self.runs_dir))
        if folder:
            self.runs_dir = Path(folder)
            self.settings.setValue("runs_dir", str(self.runs_dir))  # kept even if the app never exits cleanly
            self.settings.sync()
            self.statusBar().showMessage(f"New runs go to {folder}", 5000)

    # ================================================================ errors and closing
    def show_error(self, title: str, message: str, details: str = "", user_error: bool = True,
                   log: Path | None = None) -> None:
        """A dialog; ``log`` is the run log that kept the work so far (said only when there is one)."""
        self.statusBar().showMessage(message, 10000)
        box = error_box(self, title, message, details, user_error, log)
        self._last_error = box
        box.open()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.job is not None:
            answer = QMessageBox.question(
                self, "A job is running", "Cancel it and close? The run log keeps everything recorded so far.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            job = self.job
            job.control.cancel()
            job.wait(60_000)
            QApplication.processEvents()
            self._finish_job()
        self.follow_timer.stop()
        self._save_layout()
        event.accept()

