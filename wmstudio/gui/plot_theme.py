"""A theme switch while the app runs: every plot already made takes the new colours at once.

pyqtgraph's default colours (``theme.configure_plots``) apply to plots made afterwards; the plots on
screen keep the background, axes and texts they were made with. ``restyle_plots`` gives them the new
background, axis and text colours, titles and legends included, so that nothing waits for a restart
(a title drawn in the new text colour over the old background would be nearly invisible).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

LEGEND_ALPHA = 225  # a legend box with a fill is the background, nearly opaque (landscape_parts.legend_brush)


def restyle_plots(root: QWidget) -> int:
    """Every plot under ``root`` in pyqtgraph's current default colours; returns how many views changed."""
    bg = pg.mkColor(pg.getConfigOption("background"))
    fg = pg.mkColor(pg.getConfigOption("foreground"))
    views = root.findChildren(pg.GraphicsView)
    for view in views:
        view.setBackground(bg)
        for item in view.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setPen(fg)
                item.setTextPen(fg)
            elif isinstance(item, pg.LegendItem):
                _restyle_legend(item, bg, fg)
            elif isinstance(item, pg.LabelItem) and item.text:
                item.setText(item.text, color=fg.name())
    return len(views)


def _restyle_legend(legend: pg.LegendItem, bg: object, fg: object) -> None:
    if legend.opts.get("labelTextColor") is not None:
        legend.setLabelTextColor(fg)
    brush = legend.opts.get("brush")
    if brush is not None and pg.mkBrush(brush).style() != pg.QtCore.Qt.BrushStyle.NoBrush:
        fill = pg.mkColor(bg)
        fill.setAlpha(LEGEND_ALPHA)
        legend.setBrush(pg.mkBrush(fill))
    pen = legend.opts.get("pen")
    if pen is not None and pg.mkPen(pen).style() != pg.QtCore.Qt.PenStyle.NoPen:
        legend.setPen(pg.mkPen(fg))
