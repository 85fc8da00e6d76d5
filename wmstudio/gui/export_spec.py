"""Reads what a pyqtgraph plot shows into a Qt-free ``FigureSpec`` (``wmstudio.figures``).

Curves (their full data, not the part clipped to the view), dashed marks, texts, the models'
symbols and heat maps with their colour scales are taken from the plot's items; titles, axis titles,
ranges, log scales, fixed ticks and the stage names above a plot from the plot itself. Items that
follow the mouse (``HOVER_PROPERTY``) and items made invisible are left out.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt

from wmstudio.figures.spec import FigureSpec, Line, Marks, Panel, Raster, Rule, Text
from wmstudio.gui.plot_parts import HOVER_PROPERTY, StageAxis

DASHES = {Qt.PenStyle.DashLine: "--", Qt.PenStyle.DotLine: ":", Qt.PenStyle.DashDotLine: "-.",
          Qt.PenStyle.DashDotDotLine: "-."}
SYMBOLS = {"o": "o", "s": "s", "t": "v", "t1": "^", "t2": ">", "t3": "<", "d": "D", "+": "P", "x": "X", "p": "p",
           "h": "h", "star": "*", "arrow_up": "^", "arrow_down": "v"}


def figure_of(item: pg.PlotItem | pg.GraphicsLayout) -> FigureSpec:
    """The figure of one plot, or of the plots of a layout (top to bottom, sharing their x axis)."""
    if isinstance(item, pg.PlotItem):
        plots = [item]
    else:
        cells = sorted((rc[0], p) for p, rcs in item.items.items() for rc in rcs[:1]
                       if isinstance(p, pg.PlotItem) and not isinstance(p, pg.ColorBarItem) and p.isVisible())
        plots = [p for _, p in cells]
    rect = item.sceneBoundingRect()
    panels = [panel_of(p) for p in plots]
    heights = [max(1.0, p.sceneBoundingRect().height()) for p in plots]
    for panel, h in zip(panels, heights, strict=True):
        panel.height = h / max(heights)
    return FigureSpec(panels, aspect=rect.height() / max(1.0, rect.width()), share_x=len(plots) > 1)


def _hover(item: object) -> bool:
    return isinstance(item, QObject) and bool(item.property(HOVER_PROPERTY))


def _pen(pen: object) -> tuple[str, float, float, str]:
    """(colour, alpha, width in pixels, matplotlib dash) of a pen given as pyqtgraph accepts it."""
    p = pg.mkPen(pen)
    c = p.color()
    return c.name(), c.alphaF(), p.widthF() or 1.0, DASHES.get(p.style(), "-")


def _colour(brush: object) -> str:
    return pg.mkBrush(brush).color().name()


def _axis_label(axis: pg.AxisItem) -> str:
    if not axis.isVisible() or not axis.label.isVisible():
        return ""
    units = f" ({axis.labelUnits})" if axis.labelUnits else ""
    return f"{axis.labelText}{units}"


def panel_of(plot: pg.PlotItem) -> Panel:
    vb = plot.vb
    left, bottom, top = plot.getAxis("left"), plot.getAxis("bottom"), plot.getAxis("top")
    xlog, ylog = bool(bottom.logMode), bool(left.logMode)
    (x0, x1), (y0, y1) = vb.viewRange()
    auto_x, auto_y = (bool(a) for a in vb.state["autoRange"])  # fitted to the data: matplotlib fits it the same way
    panel = Panel(title=plot.titleLabel.text if plot.titleLabel.isVisible() else "",
                  xlabel=_axis_label(bottom), ylabel=_axis_label(left),
                  xlim=None if auto_x else (10 ** x0, 10 ** x1) if xlog else (x0, x1),
                  ylim=None if auto_y else (10 ** y0, 10 ** y1) if ylog else (y0, y1),
                  xlog=xlog, ylog=ylog, y_inverted=bool(vb.state["yInverted"]),
                  equal_aspect=bool(vb.state["aspectLocked"]), grid=bool(left.grid or bottom.grid))
    if left._tickLevels:  # fixed ticks (setTicks), such as a heat map's layer names
        panel.yticks = [(float(v), str(t)) for v, t in left._tickLevels[0]]
    if bottom._tickLevels:
        panel.xticks = [(float(v), str(t)) for v, t in bottom._tickLevels[0]]
    if isinstance(top, StageAxis) and top.isVisible():
        panel.top_names = list(top.stages)
    legend = plot.legend if plot.legend is not None else getattr(plot, "entry_legend", None)
    legend = legend if legend is not None and legend.isVisible() else None
    listed = {label.text for _, label in legend.items} if legend is not None else set()
    # a legend filled by hand (compare runs: the curves have no names) lists its entries by their sample's item
    entries = {id(sample.item): label.text for sample, label in legend.items} if legend is not None else {}
    for it in list(plot.items):  # every item added to the plot (vb.addedItems leaves out those with ignoreBounds)
        if _hover(it) or not it.isVisible() or it.opacity() == 0:
            continue
        _add(panel, it, listed, plot, entries)
    return panel


def _add(panel: Panel, it: object, listed: set[str], plot: pg.PlotItem,  # noqa: C901 - one branch per item kind
         entries: dict[int, str] | None = None) -> None:
    if isinstance(it, pg.PlotDataItem):
        x, y = it.getOriginalDataset()
        name = it.opts.get("name") or (entries or {}).get(id(it), "")
        if x is None or not len(x):
            if name not in listed:
                return
            x, y = np.zeros(0), np.zeros(0)  # listed in the legend (as on screen), nothing to draw
        pen = it.opts["pen"]
        symbol = it.opts.get("symbol")
        if pen is not None and pg.mkPen(pen).style() != Qt.PenStyle.NoPen:
            color, alpha, width, dash = _pen(pen)
        else:  # symbols only
            color, alpha, width, dash = _colour(it.opts.get("symbolBrush")), 1.0, 0.0, "none"
        panel.lines.append(Line(np.asarray(x, float), np.asarray(y, float), color, alpha, width, dash,
                                name if name in listed else "", SYMBOLS.get(symbol, "o") if symbol else None,
                                float(it.opts.get("symbolSize") or 4), z=2 + it.zValue() / 100))
    elif isinstance(it, pg.PlotCurveItem):
        if it.xData is None or not len(it.xData):
            return
        color, alpha, width, dash = _pen(it.opts["pen"])
        panel.lines.append(Line(np.asarray(it.xData, float), np.asarray(it.yData, float), color, alpha, width, dash,
                                pairs=it.opts.get("connect") == "pairs", z=2 + it.zValue() / 100))
    elif isinstance(it, pg.InfiniteLine):
        color, _alpha, width, dash = _pen(it.pen)
        vertical = abs(it.angle % 180 - 90) < 1e-6
        panel.rules.append(Rule(float(it.value()), vertical, color, width, dash))
    elif isinstance(it, pg.TextItem):
        text = it.textItem.toPlainText()
        if text.strip():
            fill = it.fill.color() if it.fill.style() != Qt.BrushStyle.NoBrush else None
            panel.texts.append(Text(float(it.pos().x()), float(it.pos().y()), text, it.color.name(),
                                    (float(it.anchor[0]), float(it.anchor[1])), fill.name() if fill else None,
                                    fill.alphaF() if fill else 0.0))
    elif isinstance(it, pg.ScatterPlotItem):
        pts = it.data
        if not len(pts):
            return
        syms = [SYMBOLS.get(s if isinstance(s, str) else it.opts["symbol"], "o") for s in pts["symbol"]]
        panel.marks.append(Marks(np.asarray(pts["x"], float), np.asarray(pts["y"], float), syms,
                                 float(it.opts["size"]), _colour(it.opts["brush"]), _pen(it.opts["pen"])[0],
                                 _pen(it.opts["pen"])[2]))
    elif isinstance(it, pg.ImageItem) and it.image is not None and it.image.size:
        panel.raster = _raster(it, plot)


def _raster(image: pg.ImageItem, plot: pg.PlotItem) -> Raster:
    rect = image.mapRectToParent(image.boundingRect())  # in the plot's data coordinates
    bar = next((b for b in plot.scene().items() if isinstance(b, pg.ColorBarItem)
                and any(ref() is image for ref in b.img_list)), None)
    cmap = image.getColorMap() or (bar.colorMap() if bar is not None else None) or pg.colormap.get("viridis")
    colors = cmap.getLookupTable(0.0, 1.0, 256, alpha=False, mode=pg.ColorMap.FLOAT)
    lo, hi = (float(v) for v in image.getLevels())
    values = np.asarray(image.image, dtype=float)
    if image.axisOrder == "col-major":
        values = values.T
    label = bar.axis.labelText if bar is not None else ""
    return Raster(values, (rect.left(), rect.right(), rect.top(), rect.bottom()), np.asarray(colors, float)[:, :3],
                  (lo, hi if hi > lo else lo + 1e-12), label, bool(bar is not None and bar.horizontal))
