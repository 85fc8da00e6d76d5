"""A job's life in the window: start it (a run or a landscape), show its events, end it.

Ties the Qt-free controller (what runs, progress, naming, chaining) to the job runner (the
worker thread) and to the panels that show it; the window only forwards the user's requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from wmstudio.events import Event, RunFinished, RunStarted, StageFinished
from wmstudio.gui.controller import StudioController
from wmstudio.gui.jobs import JobRunner
from wmstudio.gui.run_panel import RunPanel
from wmstudio.gui.view_tabs import ViewTabs
from wmstudio.status import Status


def named_model_file(log: Path, config: dict[str, Any] | None = None) -> str:
    """The Python model file the log's stored config names ("" when none or unreadable). ``config``: that
    config where the app already holds it (the log is then not read)."""
    import json

    from wmstudio.errors import WmStudioError
    from wmstudio.runlog_reader import RunLogReader

    cfg: Any = config
    if cfg is None:
        try:
            cfg = json.loads(RunLogReader(log).config_json)
        except (WmStudioError, OSError, ValueError):
            return ""  # the landscape itself will say what is wrong with the log
    model = cfg.get("model") if isinstance(cfg, dict) else None
    file = model.get("file") if isinstance(model, dict) else ""
    return file if isinstance(file, str) else ""


def confirm_model_file(parent: Any, log: Path, config: dict[str, Any] | None = None) -> bool | None:
    """The app's ``--trust``: a log whose config names a Python model file needs that file imported (its code
    runs); the user is asked first. True: trusted; False: nothing to trust; None: the user declined."""
    from PySide6.QtWidgets import QMessageBox

    file = named_model_file(log, config)
    if not file:
        return False
    answer = QMessageBox.question(
        parent, "Run the model file this log names?",
        f"The run log {log.name} names the Python model file\n{file}\n\nComputing its landscape imports that "
        "file, which runs its code. Do so only if you wrote it or trust it (as wmstudio landscape --trust).",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return True if answer == QMessageBox.StandardButton.Yes else None


class JobControl(QObject):
    changed = Signal()  # a job started or ended: the window updates its controls
    said = Signal(str)  # a line for the status bar and the Messages tab
    error = Signal(str, str, str, bool, object)  # title, message, details, user_error, the log that kept the work
    run_logged = Signal(object)  # a run ended with a log on disk (a LogSnapshot built from its events)

    def __init__(self, ctl: StudioController, run_panel: RunPanel, tabs: ViewTabs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctl, self.run_panel, self.tabs = ctl, run_panel, tabs
        self.jobs = JobRunner(self)
        self.jobs.events.connect(self._events)
        self.jobs.done.connect(self._done)
        self.jobs.failed.connect(self._failed)

    def start_run(self, cfg: Any, choice: int) -> Path | None:
        from wmstudio.errors import WmStudioError
        from wmstudio.pipeline import run_experiment

        if self.ctl.busy:
            return None
        try:
            req = self.ctl.plan_run(cfg, choice)
        except WmStudioError as exc:
            self.said.emit(f"Not started: {exc}")
            return None
        if req.note:
            self.tabs.message(req.note)
        self.tabs.clear()  # the new log has no plots or landscapes yet
        self.start("run", lambda cb, ctl: run_experiment(req.cfg, req.out, cb, ctl, req.stages), req)
        self.said.emit(f"Run started -> {req.out}")
        return req.out

    def start(self, kind: str, job: Any, request: Any = None) -> None:
        """Runs ``job(callback, control)`` as the app's one job of ``kind`` ("run" or "landscape")."""
        self.ctl.begin(kind, request)
        self.jobs.start(kind, job)
        self.changed.emit()

    def compute_landscape(self, spec: Any) -> None:
        from wmstudio.landscape import compute_landscape

        log = self.ctl.log_path
        if self.ctl.busy or log is None:
            self.said.emit("Open or run an experiment first")
            return
        trust = confirm_model_file(self.tabs, log, self.ctl.log_config)
        if trust is None:
            self.said.emit("Landscape not computed: its model file was not trusted")
            return

        def job(callback: Any, control: Any) -> Any:  # LandscapeStarted carries what the view draws first
            return compute_landscape(log, spec, callback, control, trust_code=trust)

        self.tabs.setCurrentWidget(self.tabs.landscape_view)
        self.start("landscape", job)
        self.said.emit(f"Computing landscape {spec.name or spec.kind}…")

    def set_paused(self, paused: bool) -> None:
        if self.ctl.busy:
            self.jobs.pause(paused)
            self.ctl.set_paused(paused)
            self._show_progress()
            self.said.emit("Paused after the current batch" if paused else "Resumed")

    def cancel(self) -> None:
        if self.ctl.busy:
            self.jobs.cancel()
            self.said.emit("Cancelling after the current batch…")

    # ------------------------------------------------------------ events
    def _events(self, events: list[Any]) -> None:
        if self.ctl.job == "landscape":
            self.tabs.landscape_view.apply_events(events)
        engine = [e for e in events if isinstance(e, Event)]
        for line in self.ctl.apply(engine):
            self.tabs.message(line)
        started = [e for e in engine if isinstance(e, RunStarted)]
        if started:  # the device and thread count the run itself uses (run.threads), not the window's
            self.run_panel.set_device(started[-1].device)
        self._show_progress()
        if self.ctl.job == "run" and any(isinstance(e, (StageFinished, RunFinished)) for e in engine):
            self.tabs.redraw(self.ctl.series)

    def _show_progress(self) -> None:
        self.run_panel.show_progress(self.ctl.tracker.state, self.ctl.tracker.status_line())

    def _done(self, kind: str, result: Any) -> None:
        self.ctl.end()
        status = getattr(result, "status", Status.FINISHED)
        if kind == "run":
            log = self.ctl.log_path if self.ctl.log_path is not None and self.ctl.log_path.exists() else None
            self.run_panel.show_result(f"run {status}: {log.name if log else 'no log was written'}",
                                       status == Status.FINISHED)
            self.said.emit(f"Run {status}; log: {log}" if log else f"Run {status} before its log was started")
            self._logged()  # shows the run (from its events) in every view
        else:
            self.tabs.landscape_computed(self.ctl.log_path, result if hasattr(result, "done") else None)
            self.run_panel.show_result(f"landscape: {status}", status == Status.FINISHED)
            self.said.emit(f"Landscape {getattr(result, 'name', '')} {status}")
        self.changed.emit()

    def _failed(self, kind: str, message: str, details: str, user_error: bool) -> None:
        self.ctl.end()
        self.tabs.message(f"ERROR: {message}")
        self.run_panel.show_result("failed", False)
        log = self.ctl.log_path if self.ctl.log_path is not None and self.ctl.log_path.exists() else None
        if kind == "run":
            self._logged()
        self.changed.emit()
        self.error.emit("The run failed" if kind == "run" else "The landscape failed", message, details, user_error, log)

    def _logged(self) -> None:
        """The run that ended, shown from what its events said (its log is never read back); a run that wrote
        no log is shown as its events drew it."""
        snap = self.ctl.watched_log()
        if snap is None:
            self.tabs.show_run(self.ctl.series)
            return
        self.ctl.series.log_path = str(snap.path)
        self.run_logged.emit(snap)
