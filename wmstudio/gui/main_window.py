"""The main window: composes the setup column, the view tabs and the run bar (its menus: ``menus.make_menus``).

What runs, which log is shown and how runs chain live in the Qt-free ``StudioController``; the
panels each have a small public API (``set_busy``, ``show_log``, ``clear``). Nothing here reads
HDF5 or trains: logs are read and jobs run on worker threads. With ``background_engine`` the
window is on screen before torch is imported; Run and the plots come once the engine is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui import file_dialogs, theme
from wmstudio.gui.controller import StudioController
from wmstudio.gui.dialogs import error_box
from wmstudio.gui.engine import start_engine
from wmstudio.gui.job_control import JobControl
from wmstudio.gui.log_loader import LogLoader
from wmstudio.gui.log_reading import LogSnapshot
from wmstudio.gui.menus import make_menus
from wmstudio.gui.run_panel import RunPanel
from wmstudio.gui.setup_panel import SetupPanel
from wmstudio.gui.turns import Turns
from wmstudio.gui.view_tabs import ViewTabs
from wmstudio.gui.window_state import WindowState

REDRAW_MS = 90  # the visible plot follows a run at about 10 Hz


class MainWindow(QMainWindow):
    engine_ready = Signal()
    log_opened = Signal(object)  # the Path, once shown (or only added to Compare while a job runs)
    log_failed = Signal(str)  # the error message

    def __init__(self, runs_dir: str | Path | None = None, settings: QSettings | None = None,
                 mode: str = "light", background_engine: bool = False) -> None:
        super().__init__()
        # the application's own window (set by wmstudio.gui.app.main): closing it ends the event loop even
        # when it was hidden first to wait for a cancelled job; windows made by tests leave the loop alone
        self.quits_app = False
        self._closed_hidden = False  # hidden by a close that waits for a cancelled job to stop
        self.settings = settings or QSettings("wmstudio", "Watermark Studio")
        self.ctl = StudioController(Path(runs_dir or self.settings.value("runs_dir", Path.home() / "wmstudio-runs")))
        self.mode, self.engine, self._pending = mode, False, []  # _pending: logs asked for before the engine loaded
        self.state, self.loader, self._turns = WindowState(self.settings), LogLoader(self), Turns(self)
        self.setup, self.run_panel, self.tabs = SetupPanel(), RunPanel(), ViewTabs(mode)
        self.control = JobControl(self.ctl, self.run_panel, self.tabs, self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.setup)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        central = QWidget()
        col = QVBoxLayout(central)
        col.addWidget(self.splitter, 1)
        col.addWidget(self.run_panel)
        self.setCentralWidget(central)
        make_menus(self)
        for signal, slot in ((self.setup.changed, self._update), (self.setup.said, self.say),
                             (self.setup.error, self.show_error),
                             (self.run_panel.run_requested, self.start_run), (self.run_panel.cancel_requested,
                             self.control.cancel), (self.run_panel.pause_toggled, self.control.set_paused),
                             (self.tabs.compute_requested, self.control.compute_landscape),
                             (self.tabs.stop_requested, self.control.cancel), (self.tabs.open_run, self.open_log),
                             (self.control.changed, self._update), (self.control.said, self.say),
                             (self.control.error, self.show_error), (self.control.run_logged, self._log_read),
                             (self.loader.opened, self._log_read), (self.loader.failed, self._log_not_read),
                             (self.loader.grew, self._log_grew)):
            signal.connect(slot)
        self.redraw_timer = QTimer(self, interval=REDRAW_MS, timeout=lambda: self.tabs.redraw(self.ctl.series))
        self.setup.load_demo_config()
        self.state.restore(self, self.splitter)
        self._engine_job = start_engine(self, self._engine_loaded, background_engine, lambda m, d: self.show_error(
            "The engine could not be loaded", m, d, False))

    # ================================================================ actions the menus call
    def switch_theme(self, name: str) -> str:
        """Applies theme ``name`` now, to the plots on screen too, and remembers it; returns the mode."""
        mode = theme.switch(self.settings, name)
        if self.tabs.ready:
            from wmstudio.gui.plot_theme import restyle_plots

            restyle_plots(self)
        self._update()
        self.say(f"Theme: {name} ({mode})" if name == "system" else f"Theme: {name}")
        return mode

    def export_style(self) -> Any:
        """The style exports are drawn in (``wmstudio.figures.style.ExportStyle``)."""
        from wmstudio.gui.export_settings import export_style

        return export_style(self.settings, theme.resolve(str(self.settings.value("theme", self.mode))))

    def export_settings(self) -> None:
        from wmstudio.gui.export_settings import ExportSettingsDialog

        self.export_dialog = ExportSettingsDialog(self.settings, theme.resolve(str(self.settings.value("theme", self.mode))), self)
        self.export_dialog.open()

    def choose_runs_dir(self) -> None:
        folder = file_dialogs.choose_folder(self, "Folder for new run logs", self.ctl.runs_dir)
        if folder:
            self.ctl.runs_dir = Path(folder)
            self.state.set_runs_dir(self.ctl.runs_dir)
            self.say(f"New runs go to {folder}")

    # ================================================================ engine and state
    def _engine_loaded(self) -> None:
        self.engine = True
        self.tabs.build()
        self.setup.engine_ready()
        self.run_panel.show_device(self.setup.form.values().get("run", {}).get("device", "auto"))
        self._update()
        for path in self._pending:
            self.open_log(path)
        self.engine_ready.emit()

    @property
    def busy(self) -> bool:  # a job runs or a log is being read or shown
        return self.ctl.busy or self.loader.busy or bool(self._turns.pending)

    def _update(self) -> None:
        """Every control follows the controller: what runs, whether the settings are valid, the log."""
        err, job, log = self.setup.form.error, self.ctl.job, self.ctl.log_path
        self.run_panel.set_busy(job, self.engine and err is None, str(err) if err else "the engine is loading")
        self.run_action.setEnabled(self.engine and err is None and not job)
        self.pause_action.setEnabled(job == "run")  # idle, Ctrl+P would turn the button to "Resume"
        self.cancel_action.setEnabled(bool(job))  # as the run row's Cancel: nothing to cancel when idle
        self.setup.set_busy(bool(job))
        self.tabs.set_busy(job, log is not None and log.exists())
        self.export_model_action.setEnabled(self.engine and log is not None and job != "run")
        self.setWindowTitle(self.ctl.title())
        (self.redraw_timer.start if job == "run" else self.redraw_timer.stop)()

    def say(self, text: str) -> None:
        """A confirmation (what was written and where) in the status bar and the Messages tab."""
        if text:
            self.statusBar().showMessage(text, 10000)
            self.tabs.message(text)

    def show_error(self, title: str, message: str, details: str = "", user_error: bool = True,
                   log: Path | None = None) -> None:
        """A dialog with a worded summary and the rest under Details; ``log``: the run log that kept the work."""
        self.statusBar().showMessage(message.splitlines()[0] if message else title, 10000)
        self.last_error = error_box(self, title, message, details, user_error, log)
        self.last_error.open()

    # ================================================================ runs and logs
    def start_run(self) -> Path | None:
        form = self.setup.form
        if form.error is not None or not self.engine:
            form.reveal_error()
            self.say(f"Not started: {form.error or 'the engine is still loading'}")
            return None
        return self.control.start_run(form.config(), self.run_panel.stage_choice())

    def open_log(self, path: str | Path) -> None:
        """Reads the log on a worker; ``log_opened`` or ``log_failed`` follows. A log the user opens also
        brings its settings into the form (one experiment in the window: a later stage alone then runs with
        the settings of the log it continues)."""
        if not self.engine:
            self._pending.append(str(path))
            return
        self.loader.open(path)

    def _log_read(self, snap: LogSnapshot) -> None:
        """Shown in steps, a turn of the event loop each (the visible plot first); ``log_opened`` after the last."""
        adopted = self.ctl.adopt(snap.series, snap.config)
        own = self.ctl.wrote(snap.path)
        self._turns.run([lambda: self.tabs.show_log(snap, adopted), *([lambda: self.setup.show_log(snap, own), lambda:
                         self._adopted(snap)] if adopted else []), lambda: self._opened(snap)])

    def _adopted(self, snap: LogSnapshot) -> None:
        self.run_panel.show_log(snap.series, snap.path.name)
        self.loader.follow(snap.series if self.ctl.following else None)
        self.statusBar().showMessage(f"{snap.path.name} is still being written: following it" if self.ctl.following
                                     else f"Opened {snap.path}", 10000)  # the Messages tab gets the summary

    def _opened(self, snap: LogSnapshot) -> None:
        if snap.summary:  # a log read from disk (a run this window watched has said all of it already)
            self.tabs.message(f"Opened {snap.path}\n{snap.summary}")
        self.state.add_recent(snap.path)
        self.state.fill_menu(self.recent_menu, self.open_log)
        self._update()
        self.log_opened.emit(snap.path)

    def _log_not_read(self, path: str, message: str) -> None:
        self.show_error("Cannot open the run log", message if path in message else f"{path}: {message}")
        self.log_failed.emit(message)

    def _log_grew(self, rows: Any) -> None:
        if self.ctl.merge(rows):
            self.tabs.show_run(self.ctl.series)
            self.tabs.compare_view.add_run(self.ctl.series)
            self.run_panel.show_log(self.ctl.series, Path(rows.path).name)  # its stage, or its end and status
        if not self.ctl.following:
            self.loader.follow(None)
            self.say(f"{Path(rows.path).name}: {rows.status}")
            self._update()

    # ================================================================ models
    def model_dialog(self, kind: str) -> Any:
        """``export``: the shown log's models to a file; ``verify``: a suspect model against its triggers."""
        from wmstudio.gui.model_tools import open_model_dialog

        return open_model_dialog(kind, self.ctl.log_path, self.ctl.stages_with_weights(), self, self.say)

    # ================================================================ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Never waits: a running job is cancelled and the window closes once its thread ends."""
        if self.ctl.busy and not getattr(self, "_closing", False):
            answer = QMessageBox.question(
                self, "A job is running", "Cancel it and close? The run log keeps everything recorded so far.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self._closing = True
        self.loader.follow(None)
        self.state.save(self, self.splitter, self.ctl.runs_dir)
        if self.ctl.busy or self.loader.busy or not self.engine:
            self.control.cancel()
            self.hide()  # gone from the screen at once; closed for good when the work has stopped
            self._closed_hidden = True
            for signal in (self.control.changed, self.loader.idle, self.engine_ready):
                signal.connect(self.close, Qt.ConnectionType.QueuedConnection)
            event.ignore()
            return
        event.accept()
        if self._closed_hidden and self.quits_app:
            # a hidden window's close is not "the last window closed" to Qt: the event loop would run on
            # with no window (the process stayed alive after Quit during a run)
            QApplication.quit()
