"""The curve items of the *Compare runs* plot: one per run, drawn or hidden, its points recomputed only when
what they depend on changed (the run's revision, the metric, the alignment, the smoothing), and the hover
read-out's search for the drawn point nearest the mouse. The numbers come from the Qt-free
:mod:`wmstudio.gui.compare_curves`; :class:`~wmstudio.gui.compare_view.CompareView` composes these."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF

from wmstudio.gui.compare_controls import SMOOTH_STEPS
from wmstudio.gui.compare_curves import GLOBAL, align, ema
from wmstudio.gui.plot_parts import nearest
from wmstudio.gui.series import RunSeries

MARK_POINTS_MAX = 150  # a curve with more points is a line only (as in the other views)
HOVER_PX = 40  # the read-out names the run whose point is nearest the mouse, within this many pixels


@dataclass(frozen=True)
class CurveChoice:
    """What every curve's points depend on besides its run: the chosen metric, alignment and smoothing."""

    metric: str
    alignment: str  # GLOBAL or a stage to align on
    smooth: int  # the slider's position (0 .. SMOOTH_STEPS)


class RunCurves:
    """Each run's curve item on ``plot`` (by log path) and the evaluation columns its points come from."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.items: dict[str, pg.PlotDataItem] = {}  # every run's curve, drawn or hidden
        self._columns: dict[str, tuple[tuple[int, int], dict[str, np.ndarray]]] = {}  # column's arrays

    def column(self, series: RunSeries, name: str) -> np.ndarray:
        """One evaluation column of a run as an array, kept until the run changes (its revision)."""
        stamp, columns = self._columns.get(series.log_path, ((0, -1), {}))
        if stamp != (id(series), series.revision):
            stamp, columns = (id(series), series.revision), {}
            self._columns[series.log_path] = (stamp, columns)
        if name not in columns:
            columns[name] = np.fromiter((r.get(name, math.nan) for r in series.eval_rows), dtype=np.float64,
                                        count=len(series.eval_rows))
        return columns[name]

    def points(self, series: RunSeries, choice: CurveChoice) -> tuple[np.ndarray, np.ndarray]:
        metric = choice.metric
        steps, values = self.column(series, "global_step"), self.column(series, metric)
        row_stage = np.nan_to_num(self.column(series, "stage")).astype(np.int64)
        x, y, starts = align(steps, values, row_stage, [(s.name, s.start_step) for s in series.stages],
                             choice.alignment or GLOBAL)
        weight = choice.smooth / SMOOTH_STEPS
        if weight > 0:
            y = ema(y, weight, starts, log=metric == "p_value")
        if metric == "p_value":  # drawn on a log axis: values at or below 0 cannot be placed
            y = np.where(y > 0, y, np.nan)
        return x, y

    @staticmethod
    def stamp(series: RunSeries, choice: CurveChoice) -> tuple:
        """What a curve's points depend on: the run (and its revision) and the choice."""
        return id(series), series.revision, choice

    def up_to_date(self, series: RunSeries, choice: CurveChoice) -> bool:
        curve = self.items.get(series.log_path)
        return curve is not None and curve.wm_stamp == self.stamp(series, choice)

    def curve(self, series: RunSeries, choice: CurveChoice) -> pg.PlotDataItem:
        """The run's curve (made hidden the first time), its points recomputed if the run or choice changed."""
        item = self.items.get(series.log_path)
        if item is None:
            item = pg.PlotDataItem(symbol=None, symbolSize=4)
            item.wm_color, item.wm_few, item.wm_stamp = "", None, None
            item.setVisible(False)
            self.items[series.log_path] = item
            self.plot.addItem(item)
        stamp = self.stamp(series, choice)
        if item.wm_stamp != stamp:
            x, y = self.points(series, choice)
            item.setData(x, y, connect="finite")
            item.wm_stamp = stamp
        return item

    @staticmethod
    def style(curve: pg.PlotDataItem, color: str, few: bool) -> None:
        """The curve's colour; with few curves drawn, 2 px lines and a dot on each point, else 1 px lines
        (several times faster to draw) without dots."""
        if curve.wm_color != color or curve.wm_few != few:
            pen = pg.mkPen(color, width=2 if few else 1)
            # set on the drawn parts: PlotDataItem.setPen would rebuild the whole curve
            curve.opts.update(pen=pen, symbolPen=pg.mkPen(color), symbolBrush=pg.mkBrush(color))
            curve.curve.setPen(pen)
            curve.scatter.setPen(curve.opts["symbolPen"])
            curve.scatter.setBrush(curve.opts["symbolBrush"])
            curve.wm_color, curve.wm_few = color, few
        symbol = "o" if few and curve.xData is not None and len(curve.xData) <= MARK_POINTS_MAX else None
        if curve.opts.get("symbol") != symbol:
            curve.setSymbol(symbol)


def nearest_drawn(vb: pg.ViewBox, runs: list[RunSeries], drawn: dict[str, pg.PlotDataItem], scene_pos: QPointF
                  ) -> tuple[RunSeries, float, float] | None:
    """The run, x and (as drawn) y of the drawn point nearest a scene point, within ``HOVER_PX`` pixels."""
    best: tuple[float, RunSeries, float, float] | None = None
    if not vb.sceneBoundingRect().contains(scene_pos):
        return None
    for r in runs:
        if r.log_path not in drawn:
            continue
        x, y = drawn[r.log_path].getData()
        if x is None or not len(x):
            continue
        i = nearest(np.asarray(x), vb.mapSceneToView(scene_pos).x())
        for k in {max(0, i - 1), i, min(len(x) - 1, i + 1)}:
            if not math.isfinite(y[k]):
                continue
            p = vb.mapViewToScene(QPointF(x[k], y[k]))
            d = math.dist((scene_pos.x(), scene_pos.y()), (p.x(), p.y()))
            if d <= HOVER_PX and (best is None or d < best[0]):
                best = (d, r, float(x[k]), float(y[k]))
    return None if best is None else best[1:]
