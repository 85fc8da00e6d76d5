"""The 3D surface as a picture: the OpenGL scene rendered off screen in an export style, with the title,
the labels (none over another) and the colour bar painted on.

The 2D map and the 1D path are exported as plots (``wmstudio.gui.export``); only the 3D view needs this.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QMatrix4x4,
    QPainter,
    QPainterPath,
    QPen,
    QVector3D,
)

from wmstudio.figures.style import ExportStyle
from wmstudio.gui.contours import nice_levels
from wmstudio.gui.landscape_surface import LandscapeSurface

MIN_EXPORT_PX = 11  # the smallest label of a 3D export, in pixels


def export_surface(surface: LandscapeSurface, path: str, size: tuple[int, int], title: str, labels: bool = True,
                   overwrite: bool = False, style: ExportStyle | None = None) -> list[QRectF]:
    """Render ``surface``'s 3D view (it must have one drawn) to a PNG of ``size`` in the export style; returns
    where the title and labels were painted (QRectF each; none with ``labels=False``).

    An existing file is replaced only with ``overwrite`` (the app asks first); written aside and
    renamed, never through a link (``wmstudio.safe_files.atomic_output``).

    ``style`` (``ExportStyle``, light unless given) sets the colours, whatever the app's theme: its
    background behind the scene, its text colour for the title, labels, axes and colour bar. Its
    font family and size are used as on paper: the picture is taken to be printed ``width_in``
    inches wide (the PNG records that resolution), so a 9 pt label is 9 pt there at any pixel size;
    never under ``MIN_EXPORT_PX`` pixels, so that small pictures stay legible on screen. The title is
    1.2 times the labels' size. The view on screen keeps its own colours.

    ``title`` runs across the top; below it the surface takes the left of the picture and the colour bar
    (drawn here: gradient, ticks, values, label) its right. The tick values, axis titles and model names
    (drawn over the OpenGL scene on screen) are painted on at the same places, none over another
    (``label_layout.place_labels``); ``labels=False`` leaves them and the title out.
    """
    w, h = size
    style = style or ExportStyle()
    background, ink = QColor(style.colors["background"]), QColor(style.colors["foreground"])
    px_per_pt = w / (72.0 * style.width_in)
    font = QFont(style.font_family)
    font.setPixelSize(max(MIN_EXPORT_PX, round(style.font_size * px_per_pt)))
    title_font = QFont(font)
    title_font.setPixelSize(max(round(1.2 * MIN_EXPORT_PX), round(1.2 * style.font_size * px_per_pt)))
    band = int(QFontMetricsF(title_font).height() * 1.6) if labels else 0  # the title's row
    bar_w = _colorbar_width(surface, QFontMetricsF(font), w)
    gl_w, gl_h = max(16, int(w - bar_w - 0.02 * w)), max(16, h - band)
    arr = _render_scene(surface, (gl_w, gl_h), background, ink)
    scene_img = pg.functions.makeQImage(arr, transpose=arr.shape[:2] != (gl_h, gl_w))
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(background)
    dots_per_metre = round(w / style.width_in / 0.0254)
    img.setDotsPerMeterX(dots_per_metre)
    img.setDotsPerMeterY(dots_per_metre)
    painter = QPainter(img)
    painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
    painter.drawImage(0, band, scene_img)
    rects: list[QRectF] = []
    if labels:
        painter.setFont(title_font)
        painter.setPen(ink)
        box = QRectF(0, 0, w, band)
        painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), title)
        rects.append(painter.boundingRect(box, int(Qt.AlignmentFlag.AlignCenter), title))
        rects += _paint_labels(surface, painter, gl_w, gl_h, band, font, ink, background)
    bar_h = 0.8 * gl_h
    _paint_colorbar(surface, painter, QRectF(w - bar_w - 0.01 * w, band + (gl_h - bar_h) / 2, bar_w, bar_h), font, ink)
    painter.end()
    from wmstudio.safe_files import atomic_output

    with atomic_output(path, overwrite) as tmp:
        if not img.save(str(tmp), "PNG"):
            raise OSError(f"{path}: cannot write the PNG")
    return rects


def _render_scene(surface: LandscapeSurface, size: tuple[int, int], background: QColor, ink: QColor) -> np.ndarray:
    """The OpenGL scene (surface, axes, paths, models; not its texts, which the export paints) at ``size``,
    on ``background`` with the axes in ``ink``; the view on screen keeps its colours."""
    view = surface.gl_view
    screen_bg, screen_axes = view.opts["bgcolor"], surface.gl_axes.color
    shown = [item.visible() for item in surface.gl_texts]
    view.setBackgroundColor(background)
    surface.gl_axes.setData(color=ink.getRgbF())
    for item in surface.gl_texts:
        item.setVisible(False)
    try:
        return view.renderToArray(size)  # BGRA
    finally:
        view.setBackgroundColor(QColor.fromRgbF(*screen_bg))  # kept as 0..1 floats
        surface.gl_axes.setData(color=screen_axes)
        for item, visible in zip(surface.gl_texts, shown, strict=True):
            item.setVisible(visible)


def _colorbar_ticks(surface: LandscapeSurface) -> tuple[float, float, np.ndarray]:
    lo, hi = surface.gl_colorbar.levels()
    return lo, hi, nice_levels(lo, hi, 5)


def _colorbar_width(surface: LandscapeSurface, metrics: QFontMetricsF, w: int) -> float:
    """The exported colour bar's width: gradient, ticks, the widest value and the rotated label."""
    _lo, _hi, ticks = _colorbar_ticks(surface)
    text_w = max((metrics.horizontalAdvance(f"{t:.3g}") for t in ticks), default=0.0)
    return max(12.0, 0.03 * w) + 0.6 * metrics.height() + text_w + 1.6 * metrics.height()


def _paint_colorbar(surface: LandscapeSurface, painter: QPainter, rect: QRectF, font: QFont, ink: QColor) -> None:
    """The colour bar of the 3D view in ``rect``: the colour map (its top the highest value), a frame and
    ticks in ``ink``, the values beside the ticks and the metric's name up its right side."""
    lo, hi, ticks = _colorbar_ticks(surface)
    metrics = QFontMetricsF(font)
    grad = QRectF(rect.left(), rect.top(), max(12.0, rect.width() - 2.2 * metrics.height()
                                                  - max((metrics.horizontalAdvance(f"{t:.3g}") for t in ticks),
                                                        default=0.0)), rect.height())
    colours = surface.gl_colorbar.colorMap().map(np.linspace(1.0, 0.0, max(2, int(grad.height()))), mode="qcolor")
    step = grad.height() / len(colours)
    for k, colour in enumerate(colours):
        painter.fillRect(QRectF(grad.left(), grad.top() + k * step, grad.width(), step + 1), colour)
    painter.setPen(ink)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(grad)
    painter.setFont(font)
    tick = 0.3 * metrics.height()
    span = hi - lo if hi > lo else 1.0
    for t in ticks:
        y = grad.bottom() - (t - lo) / span * grad.height()
        painter.drawLine(QPointF(grad.right(), y), QPointF(grad.right() + tick, y))
        painter.drawText(QRectF(grad.right() + 2 * tick, y - metrics.height() / 2, rect.right(), metrics.height()),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), f"{t:.3g}")
    painter.save()
    painter.translate(rect.right() - 0.2 * metrics.height(), rect.center().y())
    painter.rotate(90)
    painter.drawText(QRectF(-rect.height() / 2, 0, rect.height(), metrics.height()),
                     int(Qt.AlignmentFlag.AlignCenter), surface.gl_colorbar.axis.labelText)
    painter.restore()


def _paint_labels(surface: LandscapeSurface, painter: QPainter, w: int, h: int, top: int, font: QFont, ink: QColor,
                  halo: QColor) -> list[QRectF]:
    """The 3D view's texts in ``font``, projected as the view projects them onto the scene's ``w`` x ``h`` part
    of the picture (which starts ``top`` pixels down), none over another or over the title; in ``ink``,
    the model names on a ``halo`` (they may lie on the surface's dark colours or beside it). Returns where
    each painted label went."""
    from wmstudio.gui.label_layout import place_labels

    to_image = QMatrix4x4()
    to_image.viewport(0, h, w, -h)
    view = surface.gl_view
    mvp = to_image * view.projectionMatrix((0, 0, w, h), (0, 0, w, h)) * view.viewMatrix()
    painter.setFont(font)
    metrics = QFontMetricsF(font)
    data = surface.gl_text_data
    ranks = surface.gl_text_rank if len(surface.gl_text_rank) == len(data) else [2] * len(data)
    asked = []
    for entry in data:
        at = mvp.map(QVector3D(*entry[0])).toPointF()
        rect = metrics.boundingRect(entry[1])  # relative to the baseline's left end
        asked.append(rect.translated(at.x(), at.y() + top))
    placed = place_labels(list(zip(ranks, asked, strict=True)), QRectF(0, top, w, h), metrics.height())
    painted = []
    for entry, rect in zip(data, placed, strict=True):
        if rect is None:
            continue  # a tick value that would cover another label
        if len(entry) > 2:  # a model name: on the surface or beside it, so ink on a halo of the background
            outline = QPainterPath()
            outline.addText(rect.left(), rect.top() + metrics.ascent() + (rect.height() - metrics.height()) / 2,
                            font, entry[1])
            painter.strokePath(outline, QPen(halo, max(2.0, 0.25 * metrics.height()), Qt.PenStyle.SolidLine,
                                             Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
            painter.fillPath(outline, ink)
        else:
            painter.setPen(ink)
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                             | int(Qt.TextFlag.TextDontClip), entry[1])
        painted.append(rect)
    return painted
