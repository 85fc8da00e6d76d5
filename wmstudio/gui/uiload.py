"""Loading the Qt Designer forms in ``ui/`` at run time."""

from __future__ import annotations

from PySide6.QtCore import QFile, QIODevice
from PySide6.QtUiTools import QUiLoader
from PySide6.QtWidgets import QWidget

from wmstudio.resources import resource_path


def load_form(name: str, parent: QWidget | None = None) -> QWidget:
    path = resource_path(name, kind="ui")
    f = QFile(str(path))
    if not f.open(QIODevice.OpenModeFlag.ReadOnly):
        raise OSError(f"{path}: cannot open the UI form")
    try:
        widget = QUiLoader().load(f, parent)
    finally:
        f.close()
    if widget is None:
        raise OSError(f"{path}: not a valid Qt Designer form")
    return widget
