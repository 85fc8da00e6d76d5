"""Exporting plots (PNG, SVG) through pyqtgraph's exporters, and the 3D view as a PNG."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters as exporters


def export_plot(item: pg.PlotItem | pg.GraphicsLayout, path: str | Path, width: int = 1600) -> Path:
    """One plot to ``path``; the format follows the suffix (.png or .svg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".svg":
        _export_svg(item, path)
    elif path.suffix.lower() == ".png":
        ex = exporters.ImageExporter(item)
        ex.parameters()["width"] = width
        ex.export(str(path))
    else:
        raise ValueError(f"{path}: plots export to .png or .svg")
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"{path}: the exporter wrote nothing")
    return path


def _export_svg(item: pg.GraphicsObject, path: Path) -> None:
    """Vector SVG of the item's region of its scene, through Qt's SVG generator.

    (pyqtgraph's SVGExporter post-processes the XML and fails on the path syntax newer Qt writes.)
    """
    from PySide6.QtCore import QRectF, QSize
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    source = item.sceneBoundingRect()
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(QSize(int(source.width()), int(source.height())))
    gen.setViewBox(QRectF(0, 0, source.width(), source.height()))
    gen.setTitle(path.stem)
    gen.setDescription("Watermark Studio plot")
    painter = QPainter(gen)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        item.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()


def export_all(plots: dict[str, pg.PlotItem], folder: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    folder = Path(folder)
    written = []
    for name, item in plots.items():
        for fmt in formats:
            written.append(export_plot(item, folder / f"{name}.{fmt}"))
    return written
