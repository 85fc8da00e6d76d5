"""The export style the user chose (File ▸ Export settings…), kept in the app's settings.

Exports are light by default whatever the app's theme; "follow the app's theme" exports a dark
theme's plots dark. The font family (one matplotlib can draw with), its size, the figure's width,
the PNG resolution and the formats written are set here too.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from wmstudio.errors import ConfigError
from wmstudio.figures.style import EXPORT_FORMATS, ExportStyle, available_fonts

KEY = "export/"


def _flag(value: Any) -> bool:  # noqa: ANN401 - QSettings gives strings from INI files
    return value is True or str(value).lower() in ("true", "1", "yes")


def export_style(settings: Any, app_mode: str) -> ExportStyle:  # noqa: ANN401 - QSettings
    """The stored export style; ``app_mode`` ("light" or "dark") is used when it follows the app's theme.
    A stored value that is not valid any more (a font since removed) falls back to the default."""
    default = ExportStyle()
    fields = {"theme": app_mode if _flag(settings.value(KEY + "follow_theme", False)) else "light",
              "font_family": str(settings.value(KEY + "font_family", default.font_family)),
              "font_size": settings.value(KEY + "font_size", default.font_size),
              "width_in": settings.value(KEY + "width_in", default.width_in),
              "dpi": settings.value(KEY + "dpi", default.dpi),
              "formats": settings.value(KEY + "formats", ",".join(default.formats))}
    kept = {"theme": fields["theme"]}
    for name, value in fields.items():
        try:
            if name in ("font_size", "width_in"):
                value = float(value)
            elif name == "dpi":
                value = int(value)
            elif name == "formats":
                value = tuple(f for f in str(value).split(",") if f)
            ExportStyle(**{**kept, name: value})
            kept[name] = value
        except (ConfigError, TypeError, ValueError):
            continue
    if kept.get("font_family") not in (*available_fonts(), None):
        kept.pop("font_family")
    return ExportStyle(**kept)


def save_style(settings: Any, style: ExportStyle, follow_theme: bool) -> None:  # noqa: ANN401 - QSettings
    settings.setValue(KEY + "follow_theme", bool(follow_theme))
    settings.setValue(KEY + "font_family", style.font_family)
    settings.setValue(KEY + "font_size", float(style.font_size))
    settings.setValue(KEY + "width_in", float(style.width_in))
    settings.setValue(KEY + "dpi", int(style.dpi))
    settings.setValue(KEY + "formats", ",".join(style.formats))


class ExportSettingsDialog(QDialog):
    """Light or the app's theme, font family and size, width, PNG resolution and formats of exports."""

    def __init__(self, settings: Any, app_mode: str, parent: QWidget | None = None) -> None:  # noqa: ANN401
        super().__init__(parent)
        self.setWindowTitle("Export settings")
        self.settings, self.app_mode = settings, app_mode
        style = export_style(settings, app_mode)
        form = QFormLayout(self)
        self.follow = QComboBox()
        self.follow.addItems(["Light (for papers)", "Follow the app's theme"])
        self.follow.setCurrentIndex(1 if _flag(settings.value(KEY + "follow_theme", False)) else 0)
        self.font = QComboBox()
        self.font.addItems(available_fonts())
        self.font.setCurrentText(style.font_family)
        self.size = QDoubleSpinBox(decimals=1, minimum=4.0, maximum=40.0, singleStep=0.5, suffix=" pt")
        self.size.setValue(style.font_size)
        self.width = QDoubleSpinBox(decimals=2, minimum=1.0, maximum=40.0, singleStep=0.25, suffix=" in")
        self.width.setValue(style.width_in)
        self.width.setToolTip("the figure's width (a paper's column is about 3.3 in, its text width about 6.5 in); "
                              "the height follows the plot's shape")
        self.dpi = QSpinBox(minimum=50, maximum=1200, singleStep=50, suffix=" dpi")
        self.dpi.setValue(style.dpi)
        self.formats = {f: QCheckBox(f.upper()) for f in EXPORT_FORMATS}
        row = QHBoxLayout()
        for f, box in self.formats.items():
            box.setChecked(f in style.formats)
            row.addWidget(box)
        form.addRow("Colours", self.follow)
        form.addRow("Font", self.font)
        form.addRow("Font size", self.size)
        form.addRow("Width", self.width)
        form.addRow("PNG resolution", self.dpi)
        form.addRow("Formats", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def chosen_style(self) -> ExportStyle:
        """The style set in the dialog (``ConfigError`` when no format is checked)."""
        return ExportStyle(theme=self.app_mode if self.follow.currentIndex() == 1 else "light",
                           font_family=self.font.currentText(), font_size=self.size.value(),
                           width_in=self.width.value(), dpi=self.dpi.value(),
                           formats=tuple(f for f, box in self.formats.items() if box.isChecked()))

    def accept(self) -> None:
        try:
            style = self.chosen_style()
        except ConfigError as exc:
            QMessageBox.warning(self, "Export settings", str(exc))
            return
        save_style(self.settings, style, self.follow.currentIndex() == 1)
        super().accept()
