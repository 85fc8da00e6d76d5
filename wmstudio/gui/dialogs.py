"""Error dialogs that say what happened and what to do, with the details one click away."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

ADVICE_USER = "Fix the setting or file named in the message and try again. The run log keeps everything " \
              "recorded up to this point."
ADVICE_BUG = "This looks like a bug in Watermark Studio. The run log keeps everything recorded up to this " \
             "point; the details below help to report it."


def error_box(parent: QWidget | None, title: str, message: str, details: str = "", user_error: bool = True) -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical if not user_error else QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    box.setInformativeText(ADVICE_USER if user_error else ADVICE_BUG)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    return box
