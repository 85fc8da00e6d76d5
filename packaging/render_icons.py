"""Renders the application icon's PNG sizes from its SVG (run after editing the SVG; the PNGs are committed):

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parent / "desktop" / "icons"
APP_ID = "io.github.wmstudio.WatermarkStudio"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter needs one
    renderer = QSvgRenderer(str(ICONS / f"{APP_ID}.svg"))
    if not renderer.isValid():
        raise SystemExit(f"{ICONS / f'{APP_ID}.svg'}: not a valid SVG")
    for size in SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32)
        img.fill(Qt.GlobalColor.transparent)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = ICONS / f"{size}x{size}" / f"{APP_ID}.png"
        out.parent.mkdir(exist_ok=True)
        img.save(str(out))
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
