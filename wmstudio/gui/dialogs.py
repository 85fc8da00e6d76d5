"""Error dialogs that say what happened and what to do, with the details one click away."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

ADVICE_USER = "Fix the setting or file named in the message and try again."
ADVICE_BUG = "This looks like a bug in Watermark Studio; the details below help to report it."


def advice(user_error: bool, log: str | Path | None = None) -> str:
    """What to do next; the run log is mentioned only when there is one that kept the work."""
    text = ADVICE_USER if user_error else ADVICE_BUG
    if log is not None:
        text += f" The run log keeps everything recorded up to this point: {log}"
    return text


def error_box(parent: QWidget | None, title: str, message: str, details: str = "", user_error: bool = True,
              log: str | Path | None = None) -> QMessageBox:
    """``log``: the run log that holds the work done so far, if one was written."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical if not user_error else QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    box.setInformativeText(advice(user_error, log))
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    return box
