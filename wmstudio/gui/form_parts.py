"""The settings form's own widgets: a section that opens and closes, a choice box and a whole-number box
that the mouse wheel changes only once focused, and a field's bounds in words."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QComboBox,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from wmstudio.config import MAX_INT


class Section(QWidget):
    """A titled part of the form that opens and closes on a click; several can be open at once."""

    def __init__(self, title: str, tip: str, body: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.body = title, body
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.header = QToolButton()
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # a long title never widens the form
        self.header.setToolTip(tip)
        layout.addWidget(self.header)
        layout.addWidget(body)
        self.header.toggled.connect(self._toggled)
        self.set_invalid("")
        self._toggled(False)

    @property
    def is_open(self) -> bool:
        return self.header.isChecked()

    def set_open(self, opened: bool) -> None:
        self.header.setChecked(opened)

    def set_invalid(self, message: str) -> None:
        """Marks the title while a field of this section is invalid (seen also when it is closed)."""
        self.invalid = message
        self.header.setText(f"⚠ {self.title}" if message else self.title)
        self.header.setStyleSheet("QToolButton { font-weight: bold; text-align: left; border: none; padding: 3px; "
                                  + ("color: #d9534f; " if message else "") + "}")
        if message:
            self.header.setToolTip(f"<span style='color:#d9534f'>{html.escape(message)}</span>")

    def _toggled(self, opened: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if opened else Qt.ArrowType.RightArrow)
        self.body.setVisible(opened)


class ChoiceBox(QComboBox):
    """A choice box that the mouse wheel changes only once it has focus (clicked or tabbed into): the
    wheel over it, while scrolling the form, scrolls the form (it silently changed the data set)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: the wheel does not focus it

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # to the scroll area


class IntBox(QSpinBox):
    """A whole-number box that keeps any 32-bit number typed, also one outside the field's bounds (the
    form's validation flags it with the bound and its reason); the arrows step only within the bounds.
    The mouse wheel changes it only once it has focus (as ``ChoiceBox``)."""

    def __init__(self, lo: int | None, hi: int | None) -> None:
        super().__init__()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.lo = int(lo) if lo is not None else -MAX_INT
        self.hi = int(hi) if hi is not None else MAX_INT
        self.setRange(-MAX_INT, MAX_INT)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt's name
        value = self.value()
        self.setValue(min(max(value + steps, self.lo), self.hi) if self.lo <= value <= self.hi else value + steps)


def bounds_text(meta: dict[str, Any]) -> str:
    """The field's bounds and the reason for the upper one, for its tooltip ("" when it has none)."""
    lo, hi, why = meta.get("min"), meta.get("max"), meta.get("why") or ""
    if lo is None and hi is None:
        return ""
    low = f"{'>' if meta.get('min_exclusive') else '>='} {lo:g}" if lo is not None else ""
    high = f"<= {hi:g}" + (f" ({why})" if why else "") if hi is not None else ""
    return "allowed: " + " and ".join(filter(None, [low, high]))


def format_float(v: float) -> str:
    return repr(float(v)) if (abs(v) >= 1e-3 or v == 0) else f"{v:.3g}"
