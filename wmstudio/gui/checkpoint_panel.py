"""The checkpoint panel: does the chosen checkpoint fit the model (and why not), and how good is it.

A small view over :mod:`wmstudio.models.fit_check`. Whenever the model or data settings change, the
panel re-checks the checkpoint on a background thread (a burst of edits collapses into one check)
and shows whether it fits, with the loader's mismatch summary when it does not. *Evaluate* measures
the loaded model's test and trigger-set accuracy, also off the GUI thread, before any run.

Public API: ``attach(form)`` (follow a ConfigForm), ``set_config(cfg)``, ``evaluate()``,
``set_busy(busy)``, ``clear()``; signals ``checked(CheckResult)``, ``evaluated(EvalResult)``,
``failed(str)``; ``result`` and ``evaluation`` hold the latest outcomes.
"""

from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QGroupBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from wmstudio.config import ExperimentConfig
from wmstudio.gui.worker import JobThread, start_thread
from wmstudio.models.fit_check import CheckResult, EvalResult, check_checkpoint, evaluate_checkpoint

DEBOUNCE_MS = 250  # edits closer together than this are checked once
OK_COLOR, BAD_COLOR = "#2e7d32", "#d9534f"

def _check_key(cfg: ExperimentConfig) -> str:
    """The settings a fit check depends on (model, data, and the method that may change the model)."""
    return json.dumps([cfg.to_dict()["model"], cfg.to_dict()["data"], cfg.embed.method], sort_keys=True)


class CheckpointPanel(QGroupBox):
    checked = Signal(object)  # CheckResult of the current settings
    evaluated = Signal(object)  # EvalResult
    failed = Signal(str)  # a check or evaluation that raised

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Checkpoint", parent)
        layout = QVBoxLayout(self)
        self.status = QLabel("No checkpoint chosen")
        self.status.setWordWrap(True)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setMaximumHeight(140)
        self.details.hide()
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Test and trigger-set accuracy of the model with this checkpoint, "
                                        "as the run would measure them (nothing is trained)")
        self.evaluate_button.setEnabled(False)
        self.eval_label = QLabel("")
        self.eval_label.setWordWrap(True)
        for w in (self.status, self.details, self.evaluate_button, self.eval_label):
            layout.addWidget(w)
        self.evaluate_button.clicked.connect(self.evaluate)

        self.result: CheckResult | None = None
        self.evaluation: EvalResult | None = None
        self._cfg: ExperimentConfig | None = None
        self._key = ""
        self._check_job: JobThread | None = None
        self._eval_job: JobThread | None = None
        self._eval_key = ""
        self._busy = False
        self._form: Any = None  # the ConfigForm followed: a checkpoint that cannot be used flags its field there
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_check)

    # ------------------------------------------------------------ public API
    def attach(self, form: Any) -> None:
        """Follow a ConfigForm: re-check whenever its settings change (and are valid)."""
        def follow() -> None:
            self.set_config(form.config() if form.config_error is None else None)

        self._form = form
        form.changed.connect(follow)
        follow()

    def set_config(self, cfg: ExperimentConfig | None) -> None:
        """New settings (None: they are invalid). A change to the model or data settings starts a check."""
        self._cfg = cfg
        if cfg is None:
            self._timer.stop()
            self._key = ""
            self._flag("")
            self.result = self.evaluation = None
            self._show_status("The settings are not valid: fix them to check the checkpoint", None)
            self._update_button()
            return
        key = _check_key(cfg)
        if key == self._key:
            return
        self._key = key
        self._flag("")  # the previous settings' verdict is not this one's
        self.result = None
        self.evaluation = None
        self.eval_label.setText("")
        if not cfg.model.checkpoint:
            self._timer.stop()
            self._show_status("No checkpoint chosen: the model starts from fresh weights", None)
        else:
            self._show_status(f"Checking {html.escape(cfg.model.checkpoint)} …", None)
            self._timer.start()
        self._update_button()

    def evaluate(self) -> None:
        """Evaluate the checkpoint under the current settings, on a background thread."""
        if self._cfg is None or self._eval_job is not None or not self._can_evaluate():
            return
        cfg, self._eval_key = self._cfg, self._key
        job = JobThread(lambda _cb, _ctl: evaluate_checkpoint(cfg), "evaluate checkpoint")
        job.done.connect(self._on_evaluated)
        job.failed.connect(self._on_eval_failed)
        self._eval_job = job
        self.eval_label.setText("Evaluating …")
        self._update_button()
        start_thread(job)

    def set_busy(self, busy: bool) -> None:
        """While a run trains, Evaluate waits (it would compete for the same cores)."""
        self._busy = busy
        self._update_button()

    def clear(self) -> None:
        self._timer.stop()
        self._key = ""
        self.result = self.evaluation = None
        self.eval_label.setText("")
        self._show_status("No checkpoint chosen", None)
        self._update_button()

    # ------------------------------------------------------------ checks
    def _start_check(self) -> None:
        if self._check_job is not None or self._cfg is None or not self._cfg.model.checkpoint:
            return  # a running check starts the latest settings' check when it ends
        cfg, key = self._cfg, self._key
        job = JobThread(lambda _cb, _ctl: (key, check_checkpoint(cfg)), "check checkpoint")
        job.done.connect(self._on_checked)
        job.failed.connect(self._on_check_failed)
        self._check_job = job
        start_thread(job)

    def _on_checked(self, outcome: tuple[str, CheckResult]) -> None:
        self._check_job = None
        key, result = outcome
        if key != self._key:  # the settings changed meanwhile: check the new ones
            self._start_check()
            return
        self.result = result
        color = OK_COLOR if result.fits else BAD_COLOR
        mark = "✓" if result.fits else "✗"
        detail = "\n".join(filter(None, [result.details, *result.notes]))
        self._show_status(f"<span style='color:{color}'>{mark} {html.escape(result.summary)}</span>", detail)
        self._flag("" if result.fits or not result.field else f"{result.summary} (see the Checkpoint panel)")
        self._update_button()
        self.checked.emit(result)

    def _on_check_failed(self, message: str, _details: str, _user_error: bool) -> None:
        self._check_job = None
        self._show_status(f"<span style='color:{BAD_COLOR}'>✗ the check failed</span>", message)
        self._update_button()
        self.failed.emit(message)
        self._start_check()  # if the settings changed meanwhile

    # ------------------------------------------------------------ evaluation
    def _on_evaluated(self, result: EvalResult) -> None:
        self._eval_job = None
        self._update_button()
        if self._eval_key != self._key:
            self.eval_label.setText("The settings changed during the evaluation: evaluate again")
            return
        self.evaluation = result
        notes = "".join(f"<br>{n}" for n in result.notes)
        self.eval_label.setText(f"{result.summary()}{notes}")
        self.evaluated.emit(result)

    def _on_eval_failed(self, message: str, _details: str, _user_error: bool) -> None:
        self._eval_job = None
        self._update_button()
        self.eval_label.setText(f"<span style='color:{BAD_COLOR}'>Evaluation failed: {message}</span>")
        self.failed.emit(message)

    # ------------------------------------------------------------ drawing
    def _can_evaluate(self) -> bool:
        return self.result is not None and self.result.fits and bool(self.result.checkpoint) and not self._busy

    def _update_button(self) -> None:
        self.evaluate_button.setEnabled(self._eval_job is None and self._can_evaluate())

    def _flag(self, message: str) -> None:
        """The checkpoint field of the followed form flagged with ``message`` ("": not flagged)."""
        if self._form is not None:
            self._form.set_problem("model.checkpoint", message)

    def _show_status(self, text: str, details: str | None) -> None:
        self.status.setText(text)
        self.details.setPlainText(details or "")
        self.details.setVisible(bool(details))
