"""A thumbnail grid of trigger images with their watermark labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

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
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(2)
        outer.addWidget(self.grid_host)
        self.count = 0

    def clear(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.count = 0

    def show_set(self, images: np.ndarray, labels: np.ndarray, scheme: str, classes: list[str] | None = None,
                 note: str = "") -> None:
        self.clear()
        n = min(len(images), self.limit)
        for k in range(n):
            cell = QLabel()
            cell.setPixmap(to_pixmap(images[k]))
            lab = int(labels[k])
            name = classes[lab] if classes and lab < len(classes) else str(lab)
            cell.setToolTip(f"trigger {k}: watermark label {lab} ({name})")
            text = QLabel(f"→ {name}")
            text.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setStyleSheet("font-size: 8pt;")
            r, c = divmod(k, self.columns)
            self.grid.addWidget(cell, 2 * r, c, Qt.AlignmentFlag.AlignCenter)
            self.grid.addWidget(text, 2 * r + 1, c)
        self.count = n
        self.caption.setText(f"Trigger set: {scheme}, {len(images)} images (showing {n}) with their watermark labels"
                             + (f"\n{note}" if note else ""))
