"""The run bar: Run (with the stages to run), Pause, Cancel, overall progress, its words, the device."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from wmstudio.gui.controller import STAGE_CHOICES
from wmstudio.gui.series import RunSeries
from wmstudio.progress import ProgressState
from wmstudio.status import Status


class RunPanel(QWidget):
    run_requested = Signal()
    pause_toggled = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Run the selected stages (Ctrl+R)")
        self.stages_combo = QComboBox()
        self.stages_combo.setToolTip("Run the whole pipeline or one stage")
        self.stages_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.stages_combo.setMinimumContentsLength(14)  # long choices are cut in a narrow window
        for text, _ in STAGE_CHOICES:
            self.stages_combo.addItem(text)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause after the current batch; press again to resume (Ctrl+P)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel after the current batch; the log keeps everything so far (Ctrl+.)")
        self.progress = QProgressBar()
        self.progress.setMinimumWidth(100)
        self.progress.setToolTip("Overall progress across every stage of the run (or the landscape's points)")
        self.progress_label = QLabel("idle")
        self.progress_label.setMinimumWidth(80)
        self.device_label = QLabel("")
        self.device_label.setToolTip("Where the work runs")
        self.device_label.setMinimumWidth(60)  # its whole name when there is room, cut in a narrow window
        # the words take the room left and are cut at its end, never running into the device's name
        self.progress_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for w in (self.run_button, self.stages_combo, self.pause_button, self.cancel_button, self.progress):
            row.addWidget(w)
        row.addWidget(self.progress_label, 1)
        row.addSpacing(12)
        row.addWidget(self.device_label)
        self.run_button.clicked.connect(self.run_requested)
        self.pause_button.toggled.connect(self._paused)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self._job = ""  # the job the row shows
        self.set_busy("", False, "loading the engine…")

    # ------------------------------------------------------------ public API
    def stage_choice(self) -> int:
        return self.stages_combo.currentIndex()

    def set_busy(self, job: str, can_run: bool, why_not: str = "") -> None:
        """``job``: "" (idle), "run" or "landscape"; ``can_run``: whether Run may start one now."""
        self.run_button.setEnabled(can_run and not job)
        self.run_button.setToolTip("Run the selected stages (Ctrl+R)" if can_run else f"Cannot run: {why_not}")
        self.pause_button.setEnabled(job == "run")
        self.cancel_button.setEnabled(bool(job))
        if not job:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)
        if job and job != self._job:  # a job starts (a repeat call, e.g. after a theme switch, keeps its progress)
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)
            self.progress_label.setText("starting…")
        self._job = job

    def show_progress(self, state: ProgressState, text: str) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(1000 * state.overall))
        self.progress_label.setText(text)
        self.progress_label.setToolTip(text)  # whole, where the row cuts it

    def show_log(self, series: RunSeries, name: str) -> None:
        """The row speaks of an opened log, not of the last job: a log another process still writes is
        followed (a busy bar, its last stage), else its status (a full bar once finished)."""
        status = series.log_status or "unknown status"
        if status == Status.RUNNING:
            self.progress.setRange(0, 0)  # busy: how much of the writer's plan is left is not in the log
            stage = series.stages[-1].name if series.stages else "starting"
            self.progress_label.setText(f"following: {name} (running, {stage})")
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if status == Status.FINISHED else 0)
            self.progress_label.setText(f"opened: {name} ({status})")
        if series.device:
            self.device_label.setText(series.device)

    def show_result(self, text: str, complete: bool) -> None:
        if complete:
            self.progress.setValue(self.progress.maximum())
        self.progress_label.setText(text)

    def set_device(self, text: str) -> None:
        self.device_label.setText(text)

    def show_device(self, setting: str) -> None:
        """Names the device a run with ``run.device = setting`` would use (the engine must be loaded)."""
        from wmstudio.device import describe, resolve_device
        from wmstudio.errors import WmStudioError

        try:
            self.device_label.setText(describe(resolve_device(setting)))
        except WmStudioError as exc:
            self.device_label.setText(str(exc))

    def clear(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label.setText("idle")

    def _paused(self, paused: bool) -> None:
        if paused and not self.pause_button.isEnabled():  # no run to pause (toggled from code or a shortcut)
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.blockSignals(False)
            return
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)
