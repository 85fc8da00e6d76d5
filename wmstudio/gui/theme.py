"""Light and dark themes; "system" follows the desktop's colour scheme."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")


def resolve(theme: str) -> str:
    if theme in ("light", "dark"):
        return theme
    hints = QApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def _dark_palette() -> QPalette:
    p = QPalette()
    base, alt, text, hl = QColor(37, 37, 40), QColor(48, 48, 52), QColor(225, 225, 225), QColor(61, 133, 198)
    for role, color in [(QPalette.ColorRole.Window, alt), (QPalette.ColorRole.WindowText, text),
                        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, alt),
                        (QPalette.ColorRole.ToolTipBase, base), (QPalette.ColorRole.ToolTipText, text),
                        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, alt),
                        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.Highlight, hl),
                        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
                        (QPalette.ColorRole.Link, hl), (QPalette.ColorRole.PlaceholderText, QColor(140, 140, 140))]:
        p.setColor(role, color)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(120, 120, 120))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 120))
    return p


def apply(app: QApplication, theme: str) -> str:
    """Apply a theme to the app and to pyqtgraph's defaults; returns 'light' or 'dark'."""
    mode = resolve(theme)
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if mode == "dark" else app.style().standardPalette())
    for widget in app.allWidgets():  # a widget with a style sheet resolved its colours from the palette before:
        if widget.styleSheet():      # polished again, it takes the new one (section titles stayed the old theme's)
            widget.style().unpolish(widget)
            widget.style().polish(widget)
    if "pyqtgraph" in sys.modules:  # else the plot views call configure_plots when they are made
        configure_plots(mode)
    return mode


def configure_plots(mode: str) -> None:
    """pyqtgraph's defaults for ``mode`` (imported only here: the window shows before pyqtgraph loads)."""
    import pyqtgraph as pg

    pg.setConfigOptions(background="#1e1e21" if mode == "dark" else "w", foreground="#d0d0d0" if mode == "dark" else "#303030",
                        antialias=True)


def plot_colors(mode: str) -> dict[str, str]:
    return {"test": "#2f7ed8", "trigger": "#e4572e", "train": "#8c8c8c" if mode == "light" else "#9a9a9a",
            "drift": "#3aa655", "cos": "#8e44ad", "stage": "#888888", "pvalue": "#c9a227"}


def switch(settings: object, name: str) -> str:
    """Applies theme ``name`` to the running app and remembers it; returns the mode it resolved to."""
    settings.setValue("theme", name)  # type: ignore[attr-defined]
    return apply(QApplication.instance(), name)
