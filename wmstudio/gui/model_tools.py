"""Models out of the app and ownership checks: Export model and Verify ownership dialogs.

Both run the engine's own code (``wmstudio export-model`` / ``wmstudio verify``) on a worker
thread; the dialog stays responsive and says what it wrote or decided.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.worker import in_background

CHECKPOINT_FILTER = "Model weights (*.pt *.pth *.th *.safetensors);;Run logs (*.h5 *.hdf5);;All files (*)"
EXPORT_FILTER = "safetensors (*.safetensors);;PyTorch state dict (*.pt *.pth)"


def _path_row(edit: QLineEdit, pick: Any) -> QWidget:
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    h.addWidget(edit, 1)
    b = QPushButton("Browse…")
    b.clicked.connect(pick)
    h.addWidget(b)
    return row


class _ToolDialog(QDialog):
    """A form, an action button and a result area that shows the outcome or a worded error."""

    said = Signal(str)  # what was written or decided, for the window's status bar
    def __init__(self, title: str, action: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        self.form = QFormLayout()
        layout.addLayout(self.form)
        self.action_button = QPushButton(action)
        layout.addWidget(self.action_button)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.result)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setVisible(False)
        layout.addWidget(self.details)

    def fit(self) -> None:
        """As high as the result needs, never more than the screen's free height (the details box scrolls):
        a verification with null models had grown the dialog past the bottom of the screen."""
        self.adjustSize()
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry()
            self.resize(min(self.width(), room.width()), min(self.height(), int(room.height() * 0.9)))

    def _busy(self, text: str) -> None:
        self.action_button.setEnabled(False)
        self.result.setText(text)
        self.details.setVisible(False)

    def _failed(self, message: str, details: str, user_error: bool) -> None:
        self.action_button.setEnabled(True)
        self.result.setText(f"<span style='color:#d9534f'>{'⚠ ' if user_error else 'Failed (a bug?): '}"
                            f"{message.splitlines()[0] if message else 'failed'}</span>")
        self.details.setPlainText(message if user_error else details)
        self.details.setVisible(len(message.splitlines()) > 1 or not user_error)
        self.fit()  # room for the message: the form above keeps its height


class ExportModelDialog(_ToolDialog):
    """Writes one stage's weights of a run log to .safetensors or .pt, with its metadata."""

    exported = Signal(object)  # the written Path

    def __init__(self, log: Path, stages: list[str], parent: QWidget | None = None) -> None:
        super().__init__("Export model", "Export", parent)
        self.log = Path(log)
        self.stage = QComboBox()
        self.stage.addItems(stages)
        preferred = [n for n in ("restore", "finetune", "embed") if n in stages]
        if preferred:
            self.stage.setCurrentText(preferred[0])  # the model a user most likely ships
        self.out = QLineEdit(self._default_out())
        self.stage.currentTextChanged.connect(lambda _t: self.out.setText(self._default_out(self.out.text())))
        self.form.addRow("Run log", QLabel(str(self.log)))
        self.form.addRow("Model after stage", self.stage)
        self.form.addRow("Write to", _path_row(self.out, self._pick))
        self.action_button.setEnabled(bool(stages))
        if not stages:
            self.result.setText("This log holds no saved model weights (the run stopped before any stage ended).")
        self.action_button.clicked.connect(self.export)

    def _default_out(self, current: str = "") -> str:
        """``LOG-STAGE.safetensors`` beside the log, in the folder and format of ``current`` if one was chosen."""
        folder, suffix = (Path(current).parent, Path(current).suffix) if current else (self.log.parent, ".safetensors")
        return str(folder / f"{self.log.stem}-{self.stage.currentText()}{suffix or '.safetensors'}")

    def _pick(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the model to", self.out.text(), EXPORT_FILTER)
        if path:
            self.out.setText(path)
            self._confirmed = path  # the save dialog asked before choosing an existing file

    def export(self) -> None:
        from wmstudio.export_model import export_model

        spec, out = f"{self.log}:{self.stage.currentText()}", Path(self.out.text().strip()).expanduser()
        if out.exists() and str(out) != getattr(self, "_confirmed", None):  # typed in: ask before replacing
            answer = QMessageBox.question(self, "Replace the file?", f"{out} exists already. Replace it?",
                                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                          QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._busy(f"Exporting {spec}…")

        def done(meta: dict[str, Any]) -> None:
            self.action_button.setEnabled(True)
            arch = meta.get("architecture", {}).get("arch", "?")
            self.result.setText(f"Wrote the {meta.get('stage')} model ({arch}, {meta.get('num_classes')} classes, "
                                f"normalisation in the metadata) to <b>{out}</b> "
                                f"({out.stat().st_size / 1e6:.1f} MB).")
            self.fit()
            self.exported.emit(out)
            self.said.emit(f"Exported the {meta.get('stage')} model to {out}")

        in_background(self, lambda: export_model(spec, out, overwrite=True), done, self._failed,
                      "export")


class VerifyDialog(_ToolDialog):
    """Ownership check of a suspect model against a run's trigger set (or a trigger folder)."""

    verified = Signal(object)  # the wmstudio.verify.Verification

    def __init__(self, trigger: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Verify ownership", "Verify", parent)
        self.model = QLineEdit()
        self.model.setPlaceholderText("the suspect model's weights (.pt, .pth, .th, .safetensors)")
        self.trigger = QLineEdit(str(trigger) if trigger else "")
        self.trigger.setPlaceholderText("the run log whose trigger set was embedded (or a trigger folder)")
        self.fpr = QDoubleSpinBox()
        self.fpr.setDecimals(4)
        self.fpr.setRange(0.0001, 0.5)
        self.fpr.setSingleStep(0.005)
        self.fpr.setValue(0.01)
        self.fpr.setToolTip("The false-positive rate the decision allows (the p-value must be at most this)")
        self.null = QLineEdit()
        self.null.setPlaceholderText("optional: null models (wmstudio null-models) for an empirical p-value")
        self.form.addRow("Suspect model", _path_row(self.model, self._pick_model))
        self.form.addRow("Trigger set from", _path_row(self.trigger, self._pick_trigger))
        self.form.addRow("Null models", _path_row(self.null, self._pick_null))
        self.form.addRow("False-positive rate", self.fpr)
        self.trust = QCheckBox("trust code these files name")
        self.trust.setToolTip("Import a Python model file named by the suspect's export metadata or the trigger "
                              "log's config, and load TorchScript or full pickles. Off: such code is refused, since "
                              "the suspect's files are not yours (docs/checkpoints.md).")
        self.form.addRow("", self.trust)
        from wmstudio.gui.null_histogram import NullHistogram

        self.histogram = NullHistogram()  # the null distribution with the suspect's accuracy on it
        self.histogram.setMinimumHeight(220)
        self.histogram.setVisible(False)
        self.layout().insertWidget(self.layout().indexOf(self.details), self.histogram)
        self.details.setVisible(False)
        self.action_button.clicked.connect(self.verify)

    def _pick_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the suspect model's weights", self.model.text(),
                                              CHECKPOINT_FILTER)
        if path:
            self.model.setText(path)

    def _pick_trigger(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the run log holding the trigger set", self.trigger.text(),
                                              "Run logs (*.h5 *.hdf5);;All files (*)")
        if path:
            self.trigger.setText(path)

    def _pick_null(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the null models (from wmstudio null-models)",
                                              self.null.text(), "Null models (*.h5 *.hdf5);;All files (*)")
        if path:
            self.null.setText(path)

    def verify(self) -> None:
        from wmstudio.verify import verify

        model, trigger, fpr = self.model.text().strip(), self.trigger.text().strip(), self.fpr.value()
        null = self.null.text().strip() or None
        if not model or not trigger:
            self.result.setText("Choose the suspect model and the trigger set first.")
            return
        self._busy("Verifying (evaluates the model on the trigger set and the test data)…")
        self.histogram.clear()  # the previous model's null histogram never stands beside this one's answer
        self.histogram.setVisible(False)

        def done(v: Any) -> None:
            self.action_button.setEnabled(True)
            colour = "#2e7d32" if v.verified else "#b71c1c" if v.unverifiable else "#8a6d3b"
            if v.unverifiable:
                said = f"cannot be verified: {v.unverifiable}"
            else:
                control = "" if v.control_p_value is None else f", control p-value {v.control_p_value:.3g}"
                said = (f"{v.correct}/{v.n} triggers classified as watermarked, p-value {v.p_value:.3g}{control} "
                        f"(false-positive rate {v.fpr:g}"
                        + (f"; not shown by the {', '.join(v.failed_tests())} test)" if v.failed_tests() else ")"))
            headline = "Cannot be verified" if v.unverifiable else "Watermark present" if v.verified else "Not shown"
            self.result.setText(f"<b style='color:{colour}'>{headline}</b>: {said}")
            self.details.setPlainText(v.text())
            self.details.setVisible(True)
            if v.null_accs is not None:
                self.histogram.show(v.null_accs, v.trigger_acc, v.threshold_acc)
            self.histogram.setVisible(v.null_accs is not None)
            self.fit()
            self.verified.emit(v)
            self.said.emit(f"Verification of {model}: {headline.lower()}, p-value {v.p_value:.3g}")

        trust = self.trust.isChecked()
        in_background(self, lambda: verify(model, trigger, fpr, null=null, trust_code=trust), done,
                      self._failed, "verify")


def open_model_dialog(kind: str, log: Path | None, stages: list[str], parent: QWidget, say: Any) -> QDialog:
    """``export``: the log's models to a file; ``verify``: a suspect model against its triggers. Opened
    window-modal; its messages go to ``say``."""
    box = ExportModelDialog(log, stages, parent) if kind == "export" else VerifyDialog(log, parent)
    box.said.connect(say)
    box.open()
    return box
