"""Exporting plots (PNG, SVG) and the 3D view as a PNG.

Both formats render the plot's own part of its scene through Qt, the same way the screen does:
the PNG at a higher device-pixel ratio (so text, lines and the legend all scale together), the SVG
through Qt's SVG generator at the resolution pyqtgraph's cached drawings were recorded at (a
mismatch would draw the axes at 72/96 of the data's scale). Other plots that share the scene (the
rest of the tab) are left out of both files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPicture
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem

from wmstudio.gui.plot_parts import HOVER_PROPERTY


def export_plot(item: pg.PlotItem | pg.GraphicsLayout, path: str | Path, width: int = 1600,
                overwrite: bool = False) -> Path:
    """One plot to ``path``; the format follows the suffix (.png, ``width`` pixels wide, or .svg).

    An existing file is replaced only with ``overwrite`` (the app asks first); the file is written aside
    and renamed, never through a link (``wmstudio.safe_files.atomic_output``)."""
    from wmstudio.safe_files import atomic_output

    path = Path(path)
    if path.suffix.lower() not in (".svg", ".png"):
        raise ValueError(f"{path}: plots export to .png or .svg")
    with atomic_output(path, overwrite) as tmp:
        if path.suffix.lower() == ".svg":
            _export_svg(item, tmp)
        else:
            _export_png(item, tmp, width)
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise OSError(f"{path}: the exporter wrote nothing")
    return path


def _background(item: QGraphicsItem) -> QColor:
    views = item.scene().views()
    return views[0].backgroundBrush().color() if views else QColor("white")


@contextmanager
def _alone(item: QGraphicsItem) -> Iterator[None]:
    """Makes every item of the scene that is not ``item``, inside it or around it, fully transparent.

    Qt skips transparent items when rendering, so the file holds this plot only (and no hover mark: items
    with the ``HOVER_PROPERTY`` property set); opacity (unlike
    visibility) leaves the layout untouched, and everything is restored afterwards.
    """
    hidden: list[tuple[QGraphicsItem, float]] = []
    for other in item.scene().items():
        parent = other.parentItem()
        related = other is item or item.isAncestorOf(other) or other.isAncestorOf(item)
        hover = isinstance(other, QObject) and bool(other.property(HOVER_PROPERTY))  # the mouse's marks stay on screen
        if hover or (not related and (parent is None or parent is item or parent.isAncestorOf(item))):
            hidden.append((other, other.opacity()))
            other.setOpacity(0.0)
    try:
        yield
    finally:
        for other, opacity in hidden:
            other.setOpacity(opacity)


@contextmanager
def _export_mode(item: QGraphicsItem, painter: QPainter) -> Iterator[None]:
    """pyqtgraph's export mode for the items drawn: scatter symbols are drawn as shapes rather
    than copied from the on-screen pixmap atlas (which an SVG would hold whole at every point)."""
    items = [i for i in item.scene().items() if hasattr(i, "setExportMode")]
    opts = {"antialias": True, "background": _background(item), "painter": painter}
    for i in items:
        i.setExportMode(True, opts)
    try:
        yield
    finally:
        for i in items:
            i.setExportMode(False)


def _render(item: QGraphicsItem, painter: QPainter, source: QRectF) -> None:
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    with _alone(item), _export_mode(item, painter):
        item.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source,
                            Qt.AspectRatioMode.IgnoreAspectRatio)


def _export_png(item: QGraphicsItem, path: Path, width: int) -> None:
    source = item.sceneBoundingRect()
    ratio = width / max(1.0, source.width())
    img = QImage(QSize(max(1, round(width)), max(1, round(source.height() * ratio))), QImage.Format.Format_ARGB32)
    img.setDevicePixelRatio(ratio)  # the painter works in the screen's units; the image holds ratio x the pixels
    img.fill(_background(item))
    painter = QPainter(img)
    try:
        _render(item, painter, source)
    finally:
        painter.end()
    if not img.save(str(path)):
        raise OSError(f"{path}: cannot write the PNG")


def _export_svg(item: QGraphicsItem, path: Path) -> None:
    """Vector SVG of the item's region of its scene, through Qt's SVG generator.

    (pyqtgraph's SVGExporter post-processes the XML and fails on the path syntax newer Qt writes.)
    """
    source = item.sceneBoundingRect()
    gen = QSvgGenerator(QSvgGenerator.SvgVersion.Svg11)  # SVG 1.1 keeps clipping: plots stay inside their axes
    gen.setFileName(str(path))
    gen.setResolution(QPicture().logicalDpiX())  # pyqtgraph's axes replay QPictures recorded at this DPI
    gen.setSize(QSize(int(source.width()), int(source.height())))
    gen.setViewBox(QRectF(0, 0, source.width(), source.height()))
    gen.setTitle(path.stem)
    gen.setDescription("Watermark Studio plot")
    painter = QPainter(gen)
    try:
        painter.fillRect(QRectF(0, 0, source.width(), source.height()), _background(item))
        _render(item, painter, source)
    finally:
        painter.end()


def export_all(plots: dict[str, pg.PlotItem], folder: str | Path, formats: tuple[str, ...] = ("png", "svg"),
               overwrite: bool = False) -> list[Path]:
    folder = Path(folder)
    written = []
    for name, item in plots.items():
        for fmt in formats:
            written.append(export_plot(item, folder / f"{name}.{fmt}", overwrite=overwrite))
    return written
