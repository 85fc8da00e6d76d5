"""Plot parts the views share: aligned axes, a legend in the title row, marked curves, names above a
plot at positions along its x axis, and a crosshair with a read-out of the values under the mouse."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF, QPainter
from PySide6.QtWidgets import QLabel, QWidget

LEFT_AXIS_PX = 72  # every left axis of a view this wide: x-linked plots then cover the same steps


def align_left_axes(*plots: pg.PlotItem, width: int = LEFT_AXIS_PX) -> None:
    """One width for the left axes of plots stacked on a shared x axis.

    pyqtgraph links x ranges by screen position; a wider axis (10⁻¹⁰⁰ needs more room than 1.0)
    would start its plot further right, hiding the first steps, and clipping to the view would
    also drop them from its y range.
    """
    for p in plots:
        p.getAxis("left").setWidth(width)


TITLE_ROW_PX = 30  # pyqtgraph's title row
LEGEND_COLUMNS = 8  # a legend on the title's line lists at most this many entries a line


def title_legend(plot: pg.PlotItem, title: str, size: str = "8pt", fit: bool = True,
                 **legend_opts: object) -> pg.LegendItem:
    """The plot's title on the left of its title row and a one-line legend on the right of it; where the plot
    is too narrow for both on one line, the legend moves under the title in as many columns as fit and the
    title row grows (:class:`LegendFit`).

    Both sit above the data area, so the legend never hides a curve or the title; being part of the plot
    item, the legend is in every export of the plot. Change the title with :func:`set_title`. ``fit``: False
    for a legend whose caller lays it out itself (Compare's columns).
    """
    plot.setTitle(title, justify="left", size="10pt")
    legend = pg.LegendItem(colCount=LEGEND_COLUMNS, labelTextSize=size, **legend_opts)
    legend.layout.setContentsMargins(2, 0, 2, 0)  # one text line high: it fits the title row
    legend.setParentItem(plot)  # the plot item, not its data area (pyqtgraph's default)
    legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-6, 3))
    plot.legend = legend  # curves added with a name are listed
    if fit:
        plot.legend_fit = LegendFit(plot, legend)
    return legend


def shrinkable_title(plot: pg.PlotItem) -> None:
    """Lets ``plot`` be narrower than its title (the title is cut at the plot's right edge). pyqtgraph makes a
    title's text width the plot's minimum width: in a narrow window the p-value plot's long title held the
    stacked plots wider than their view, which cut off their right-hand steps with no scroll bar."""
    label = plot.titleLabel
    own = label.updateMin

    def update_min() -> None:
        own()
        label.setMinimumWidth(0)
        label.updateGeometry()

    label.updateMin = update_min
    update_min()


def set_title(plot: pg.PlotItem, title: str, size: str = "10pt") -> None:
    """A new title for ``plot`` (left-justified), its title-row legend placed again for the title's width."""
    plot.setTitle(title, justify="left", size=size)
    fit = getattr(plot, "legend_fit", None)
    if fit is not None:
        fit.refit(force=True)


def columns_that_fit(cells: list[float], room: float) -> int:
    """The most columns (up to ``LEGEND_COLUMNS``) a grid of entries ``cells`` wide (in order, row by row;
    each column as wide as its widest entry) takes within ``room``; at least 1."""
    for cols in range(min(LEGEND_COLUMNS, len(cells)), 1, -1):
        if sum(max(cells[j::cols]) for j in range(cols)) <= room:
            return cols
    return 1


def set_columns(legend: pg.LegendItem, cols: int) -> None:
    """Lays ``legend`` out in ``cols`` columns. pyqtgraph's own ``setColumnCount`` sizes the legend from its
    entries' current geometry, which a layout of fewer columns had stretched (a one-column legend made
    wide again kept every column as wide as its longest entry); each entry takes its preferred size first."""
    if cols == legend.columnCount:
        return
    legend.setColumnCount(cols)
    for sample, label in legend.items:
        for part in (sample, label):
            part.resize(part.effectiveSizeHint(Qt.SizeHint.PreferredSize))
    legend.updateSize()


class LegendFit(QObject):
    """Keeps a title-row legend clear of the title at any width: on the title's line while both fit, else
    under the title in as many columns as the plot's width takes, the title row as high as they need
    (at 800 px windows the legends had covered the titles). Refits when the plot is resized and when
    entries are added or removed (the legend's own size changes)."""

    def __init__(self, plot: pg.PlotItem, legend: pg.LegendItem) -> None:
        super().__init__()
        self.plot, self.legend = plot, legend
        self.below = False  # the legend is under the title (the narrow layout)
        self._busy = False
        plot.layout.setAlignment(plot.titleLabel, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        plot.geometryChanged.connect(self.refit)
        legend.geometryChanged.connect(self.refit)

    def refit(self, force: bool = False) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self._refit(force)
        finally:
            self._busy = False

    def _refit(self, force: bool) -> None:
        items = list(self.legend.items)
        width = self.plot.geometry().width()
        if width <= 0:
            return
        title_w = self.plot.titleLabel.item.boundingRect().width() if self.plot.titleLabel.isVisible() else 0.0
        cells = [20.0 + label.item.boundingRect().width() + 8.0 for _sample, label in items]
        on_line = sum(cells[:LEGEND_COLUMNS]) + 25.0
        below = bool(items) and title_w + on_line + 16.0 > width
        if below:
            cols = columns_that_fit(cells, width - 30.0)
            rows = math.ceil(len(items) / cols)
            row_h = max(20.0, max(label.item.boundingRect().height() for _s, label in items))
            set_columns(self.legend, cols)
            self.plot.layout.setRowFixedHeight(0, TITLE_ROW_PX + rows * row_h)
            if force or not self.below:
                self.legend.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(6, TITLE_ROW_PX - 4))
        else:
            set_columns(self.legend, LEGEND_COLUMNS)
            if self.plot.titleLabel.isVisible():
                self.plot.layout.setRowFixedHeight(0, TITLE_ROW_PX)
            if force or self.below:
                self.legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-6, 3))
        self.below = below


def marked_curve(plot: pg.PlotItem, color: str, name: str, width: int = 2) -> pg.PlotDataItem:
    """A line with a dot at each point, styled with ready-made Qt pens and brushes.

    Given as colour strings or tuples, pyqtgraph rebuilds the symbol's pen and brush on every
    setData, and each rebuild passes the tuple through numpy, which keeps one more reference to
    None each time; with ready-made objects a redraw leaves None's count unchanged.
    """
    return plot.plot(pen=pg.mkPen(color, width=width), symbol="o", symbolSize=4,
                     symbolPen=pg.mkPen(color), symbolBrush=pg.mkBrush(color), name=name)


class OverlayNote(QLabel):
    """A note laid across the middle of a plot widget ("open a run log"), outside any layout.

    Showing or hiding it moves nothing: a note in the layout above the plots resized them each time a
    log was opened or cleared, and every resize redrew all the plots once more on the UI thread.
    """

    def __init__(self, text: str, host: QWidget) -> None:
        super().__init__(text, host)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("color: #888888; font-size: 11pt; padding: 6px; background: palette(base);")
        host.installEventFilter(self)
        self._place()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self._place()

    def _place(self) -> None:
        host = self.parentWidget()
        width = max(100, host.width() - 40)
        height = self.heightForWidth(width) if self.hasHeightForWidth() else self.sizeHint().height()
        # across the middle, over empty data areas: the plots' titles and legends above stay readable
        self.setGeometry(20, max(0, (host.height() - height) // 2), width, height)
        self.raise_()


HOVER_PROPERTY = "wmstudio_hover"  # on the items that follow the mouse: exports leave them out


def hover_mark(item: pg.GraphicsObject) -> pg.GraphicsObject:
    """``item`` follows the mouse (a crosshair, a dot on the nearest point): on screen only, never exported."""
    item.setProperty(HOVER_PROPERTY, True)
    return item


MARK_POINTS_MAX = 150  # a curve with more points is drawn as a line only


def set_marked_data(curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    """Data for a :func:`marked_curve`: a dot at each point while there are few, a plain line beyond
    ``MARK_POINTS_MAX`` (dots a pixel or two apart only blur the line, and building them is most of the
    cost of drawing a long run; the hover read-out gives each point's value)."""
    symbol = "o" if len(x) <= MARK_POINTS_MAX else None
    if curve.opts.get("symbol") != symbol:
        curve.setSymbol(symbol)
    curve.setData(x, y)


class StageAxis(pg.AxisItem):
    """Names above a plot (stages at their first steps, models along a path), in two staggered rows.

    Outside the plot's data area, so a name never hides a curve. A stage that began left of the
    visible range is named at the left edge; a name that would run into its row's previous one
    moves to the other row, and is left out when both are taken (the hover read-out names it).
    """

    def __init__(self) -> None:
        super().__init__("top")
        font = QFont()
        font.setPointSizeF(8.5)
        self.setStyle(tickFont=font)
        self.stages: list[tuple[float, str]] = []
        self.row_px = QFontMetricsF(font).height()
        self.setHeight(int(2 * self.row_px + 3))

    def set_stages(self, stages: list[tuple[float, str]]) -> None:
        if stages != self.stages:
            self.stages = list(stages)
            self.picture = None
            self.update()

    def label_boxes(self) -> list[tuple[str, QRectF]]:
        """(name, rectangle in this axis' coordinates) of each stage name drawn."""
        return [(text, rect) for text, rect, _tick in self._laid_out()]

    def _laid_out(self) -> list[tuple[str, QRectF, float]]:
        """Each name drawn: (name, its rectangle, the x of its tick). A name starts right of its tick; one that
        would run past the right edge ends left of it instead (it had been cut off there)."""
        view = self.linkedView()
        if view is None or not self.stages:
            return []
        bounds = self.mapRectFromParent(self.geometry())
        metrics = QFontMetricsF(self.style["tickFont"])
        lo = view.viewRange()[0][0]
        rows: list[float] = [-math.inf, -math.inf]  # right end of the last name in each row
        out = []
        for k, (x, text) in enumerate(self.stages):
            end = self.stages[k + 1][0] if k + 1 < len(self.stages) else math.inf
            if end <= lo:
                continue
            px = max(bounds.left(), self.mapFromScene(view.mapViewToScene(QPointF(max(x, lo), 0.0))).x())
            if px >= bounds.right() - 4:
                break
            width = metrics.horizontalAdvance(text) + 4
            left = px + 2 if px + 2 + width <= bounds.right() else max(bounds.left(), px - 2 - width)
            row = next((r for r in (k % 2, 1 - k % 2) if rows[r] <= left), None)
            if row is None:
                continue
            rows[row] = max(px, left + width) + 6
            out.append((text, QRectF(left, bounds.top() + 1 + row * self.row_px, width, self.row_px), px))
        return out

    def generateDrawSpecs(self, p: QPainter) -> tuple:  # noqa: N802 - pyqtgraph's name
        bounds = self.mapRectFromParent(self.geometry())
        pen = self.pen()
        boxes = self._laid_out()
        lower = [r for _, r, _x in boxes if r.top() > bounds.top() + 1.5]  # the second row's names

        def tick_end(r: QRectF, x: float) -> float:  # a first-row name's tick stops above a second-row name it crosses
            return r.bottom() if any(o.left() - 2 <= x <= o.right() + 2 for o in lower if o is not r) else bounds.bottom()

        ticks = [(pen, QPointF(x, r.top()), QPointF(x, tick_end(r, x))) for _, r, x in boxes]
        texts = [(r, int((Qt.AlignmentFlag.AlignLeft if x <= r.left() else Qt.AlignmentFlag.AlignRight)
                         | Qt.AlignmentFlag.AlignVCenter), t) for t, r, x in boxes]
        return (pen, bounds.bottomLeft(), bounds.bottomRight()), ticks, texts


def nearest(x: np.ndarray, value: float) -> int:
    """Index of the entry of a sorted array nearest to a value (-1 for an empty array)."""
    if not len(x):
        return -1
    i = int(np.clip(np.searchsorted(x, value), 1, len(x) - 1)) if len(x) > 1 else 0
    return i - 1 if len(x) > 1 and abs(x[i - 1] - value) <= abs(x[i] - value) else i


class Crosshair(QObject):
    """A crosshair over plots stacked on one x axis, and a read-out of the values under it.

    The vertical line runs through every plot at the hovered step, the horizontal one only through
    the plot under the mouse. Mouse moves are rate-limited (pyqtgraph's SignalProxy), the lines are
    created once and only moved, and everything hides when the mouse leaves the plots, so neither
    a live redraw nor an export ever sees them.
    """

    def __init__(self, widget: pg.GraphicsLayoutWidget, plots: list[pg.PlotItem], readout: QLabel,
                 describe: Callable[[pg.PlotItem, float, float], tuple[float, str]]) -> None:
        super().__init__(widget)
        self.plots, self.readout, self.describe = plots, readout, describe
        pen = pg.mkPen("#888888", width=1, style=Qt.PenStyle.DotLine)
        self.vlines = [hover_mark(pg.InfiniteLine(angle=90, movable=False, pen=pen)) for _ in plots]
        self.hlines = [hover_mark(pg.InfiniteLine(angle=0, movable=False, pen=pen)) for _ in plots]
        for plot, v, h in zip(plots, self.vlines, self.hlines, strict=True):
            for line in (v, h):
                line.setVisible(False)
                line.setZValue(50)
                plot.addItem(line, ignoreBounds=True)
        self.proxy = pg.SignalProxy(widget.scene().sigMouseMoved, rateLimit=30, slot=lambda evt: self.move_to(evt[0]))
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Leave:
            self.hide()
        return False

    def hide(self) -> None:
        for line in self.vlines + self.hlines:
            line.setVisible(False)
        self.readout.setText(" ")

    def move_to(self, scene_pos: QPointF) -> None:
        """Show the crosshair and read-out for a point of the scene (where the mouse is)."""
        hit = next((p for p in self.plots if p.isVisible() and p.vb.sceneBoundingRect().contains(scene_pos)), None)
        if hit is None:
            self.hide()
            return
        pos = hit.vb.mapSceneToView(scene_pos)
        x, text = self.describe(hit, pos.x(), pos.y())
        if not text:
            self.hide()
            return
        for plot, v, h in zip(self.plots, self.vlines, self.hlines, strict=True):
            v.setPos(x)
            v.setVisible(True)
            h.setPos(pos.y())
            h.setVisible(plot is hit)
        self.readout.setText(text)


TICK_LABEL_PX = 18  # vertical room one tick label needs on a left or right axis


def _nicer(spacing: float) -> float:
    """The next round tick spacing above ``spacing`` (1, 2, 5 x 10^k)."""
    mag = 10.0 ** math.floor(math.log10(spacing))
    return next(f * mag for f in (2, 5, 10, 20) if f * mag > spacing * 1.0001)


class RoomyAxis(pg.AxisItem):
    """A vertical axis whose tick labels never overlap: in a short plot (a window 500 pixels high) the
    tick spacing widens to round steps that leave each label ``TICK_LABEL_PX``, and fixed ticks (a heat
    map's layer names) are thinned to every k-th. Its ticks read the values themselves: pyqtgraph's SI
    prefix turned losses of 0.1-0.8 into "cross-entropy (x0.001)" with ticks at 100 .. 800."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802 - pyqtgraph's name
        levels = super().tickSpacing(minVal, maxVal, size)
        if self.orientation not in ("left", "right") or not levels or self.logMode:
            return levels
        room = max(3, int(size // TICK_LABEL_PX))  # the end values are often cut: one more inside
        span = abs(maxVal - minVal)
        spacing, offset = levels[0]
        while spacing > 0 and span / spacing > room:
            spacing = _nicer(spacing)
        return [(spacing, offset)]

    def generateDrawSpecs(self, p: QPainter) -> tuple:  # noqa: N802 - pyqtgraph's name
        fixed = self._tickLevels
        if fixed is None or self.orientation not in ("left", "right"):
            return super().generateDrawSpecs(p)
        room = max(1, int(self.geometry().height() // TICK_LABEL_PX))
        self._tickLevels = [level[::max(1, math.ceil(len(level) / room))] for level in fixed]
        try:
            return super().generateDrawSpecs(p)
        finally:
            self._tickLevels = fixed
