"""A thumbnail grid of trigger images with their watermark labels.

The grid has as many columns as its width holds (at most ``columns``), so it never makes the settings
column wider than the window gives it (which would push the form's "…" buttons out of view)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

if TYPE_CHECKING:
    import numpy as np


def to_pixmap(image: np.ndarray, side: int = 48) -> QPixmap:
    """(C, H, W) uint8 -> a pixmap scaled (nearest) to ``side`` pixels."""
    import numpy as np

    img = np.ascontiguousarray(image.transpose(1, 2, 0))
    h, w, c = img.shape
    if c == 1:
        q = QImage(img.tobytes(), w, h, w, QImage.Format.Format_Grayscale8)
    else:
        q = QImage(img[:, :, :3].tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(q.copy()).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.FastTransformation)


CELL_PX = 56  # a thumbnail's column: the 48-pixel image and its label, cut to this width


class TriggerGrid(QWidget):
    def __init__(self, columns: int = 6, limit: int = 36, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns, self.limit = columns, limit
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel("Trigger set: press Preview, or run")
        self.caption.setWordWrap(True)
        outer.addWidget(self.caption)
        self.grid_host = QWidget()
        self.grid_host.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(2)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        outer.addWidget(self.grid_host)
        self.count = 0
        self.cells: list[QWidget] = []
        self.placed_columns = 0

    def clear(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.count = 0
        self.cells = []
        self.placed_columns = 0

    def fitting_columns(self) -> int:
        """The columns the grid's width holds (at least one, at most ``columns``)."""
        spacing = self.grid.spacing()
        return max(1, min(self.columns, (self.width() + spacing) // (CELL_PX + spacing)))

    def _place(self) -> None:
        cols = self.fitting_columns()
        if cols == self.placed_columns:
            return
        for cell in self.cells:
            self.grid.removeWidget(cell)
        for k, cell in enumerate(self.cells):
            self.grid.addWidget(cell, *divmod(k, cols))
        self.placed_columns = cols

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._place()

    def show_set(self, images: np.ndarray, labels: np.ndarray, scheme: str, classes: list[str] | None = None,
                 note: str = "") -> None:
        self.clear()
        n = min(len(images), self.limit)
        for k in range(n):
            image = QLabel()
            image.setPixmap(to_pixmap(images[k]))
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab = int(labels[k])
            name = classes[lab] if classes and lab < len(classes) else str(lab)
            text = QLabel()
            text.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setStyleSheet("font-size: 8pt;")
            text.setText(QFontMetrics(text.font()).elidedText(f"→ {name}", Qt.TextElideMode.ElideRight, CELL_PX))
            cell = QWidget()
            cell.setFixedWidth(CELL_PX)
            cell.setToolTip(f"trigger {k}: watermark label {lab} ({name})")
            box = QVBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(0)
            box.addWidget(image)
            box.addWidget(text)
            self.cells.append(cell)
        self._place()
        self.count = n
        self.caption.setText(f"Trigger set: {scheme}, {len(images)} images (showing {n}) with their watermark labels"
                             + (f"\n{note}" if note else ""))
