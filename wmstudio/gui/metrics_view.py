"""Live plots of one run: accuracies, losses, the verification p-value, weight drift, per-layer drift.

All stages share one time axis (the global optimiser step) with the stage boundaries marked. The
plots read a :class:`RunSeries` and redraw only when its revision changed; long runs are
downsampled for display (peak mode, clipped to the view).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from wmstudio.gui.series import RunSeries
from wmstudio.gui.theme import plot_colors
from wmstudio.metric_names import STAGE_LABELS

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
LABEL_PX = 26  # vertical room one p-value tick label needs
LEFT_AXIS_PX = 72  # every left axis of a view this wide: x-linked plots then cover the same steps


def align_left_axes(*plots: pg.PlotItem) -> None:
    """One width for the left axes of plots stacked on a shared x axis.

    pyqtgraph links x ranges by screen position; a wider axis (10⁻¹⁰⁰ needs more room than 1.0)
    would start its plot further right, hiding the first steps, and clipping to the view would
    also drop them from its y range.
    """
    for p in plots:
        p.getAxis("left").setWidth(LEFT_AXIS_PX)


class PValueAxis(pg.AxisItem):
    """A log axis for p-values: whole decades only, spaced so the labels never crowd, read as 10⁻ⁿ.

    pyqtgraph's own log axis adds an SI factor to the label ("x1e+09") that also shifts its tick
    values, and fills a short range with unlabelled-looking 2 3 4 … 9 minor ticks.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("left", **kwargs)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802 - pyqtgraph's name
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = min(minVal, maxVal), max(minVal, maxVal)
        room = max(2, int(size // LABEL_PX))
        span = max(1.0, math.ceil(hi) - math.floor(lo))
        step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000) if span / s <= room), 1000)
        first = math.ceil(lo / step - 1e-9) * step
        return [(float(step), [float(v) for v in np.arange(first, hi + 1e-9, step)])]

    def tickStrings(self, values: list, scale: float, spacing: float) -> list[str]:  # noqa: N802
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return ["1" if round(v) == 0 else "10" + str(round(v)).translate(SUPERSCRIPT) for v in values]


def _plot(layout: pg.GraphicsLayoutWidget, row: int, title: str, ylabel: str,
          left: pg.AxisItem | None = None) -> pg.PlotItem:
    p = layout.addPlot(row=row, col=0, title=title, axisItems={"left": left} if left is not None else None)
    p.showGrid(x=True, y=True, alpha=0.2)
    for side in ("left", "bottom"):
        p.getAxis(side).setStyle(maxTickLevel=0)  # grid at major ticks only: a dense grid costs most of a redraw
    p.setLabel("left", ylabel)
    p.setDownsampling(auto=True, mode="peak")
    p.setClipToView(True)
    legend = p.addLegend(offset=(-10, 24), labelTextSize="8pt")
    legend.setBrush(pg.mkBrush(128, 128, 128, 40))
    return p


def marked_curve(plot: pg.PlotItem, color: str, name: str, width: int = 2) -> pg.PlotDataItem:
    """A line with a dot at each point, styled with ready-made Qt pens and brushes.

    Given as colour strings or tuples, pyqtgraph rebuilds the symbol's pen and brush on every
    setData, and each rebuild passes the tuple through numpy, which keeps one more reference to
    None each time; with ready-made objects a redraw leaves None's count unchanged.
    """
    return plot.plot(pen=pg.mkPen(color, width=width), symbol="o", symbolSize=4,
                     symbolPen=pg.mkPen(color), symbolBrush=pg.mkBrush(color), name=name)


class StageMarks:
    """Vertical lines with labels at the start of each stage, kept in sync with the series."""

    def __init__(self, plot: pg.PlotItem, labels: bool) -> None:
        self.plot, self.labels, self.lines = plot, labels, []

    def update(self, series: RunSeries) -> None:
        if len(self.lines) == len(series.stages):
            return
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []
        for k, sp in enumerate(series.stages):
            # every other label one line lower, so a short stage's label does not run into the next one's
            line = pg.InfiniteLine(sp.start_step, angle=90, movable=False,
                                   pen=pg.mkPen("#888888", style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label=STAGE_LABELS.get(sp.name, sp.name) if self.labels else None,
                                   labelOpts={"position": 0.93, "color": "#888888",
                                              "anchors": [(0, 0), (0, 0)] if k % 2 == 0 else [(0, -1.1), (0, -1.1)]})
            self.plot.addItem(line, ignoreBounds=True)
            self.lines.append(line)


class GrowingXAxis:
    """Keeps the x range fixed while a run grows, widening it in steps of 25%.

    Re-rendering the axes is most of a redraw's cost; with a range that changes only now and then
    the axes stay cached between redraws. A user's own pan or zoom turns this off until the next run.
    """

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot, self.x_max, self.follow = plot, 0.0, True
        plot.vb.sigRangeChangedManually.connect(self._manual)

    def _manual(self, *_args: object) -> None:
        self.follow = False

    def reset(self) -> None:
        self.x_max, self.follow = 0.0, True

    def update(self, last_step: float) -> None:
        if self.follow and last_step > self.x_max:
            self.x_max = max(50.0, last_step * 1.25)
            self.plot.setXRange(0, self.x_max, padding=0.01)

    def fit(self, last_step: float) -> None:
        if self.follow:
            self.x_max = float(last_step)
            self.plot.setXRange(0, max(1.0, last_step), padding=0.02)


class MetricsView(QWidget):
    """Accuracy, loss and p-value over global steps, all stages on one axis."""

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = plot_colors(mode)
        self.layout_widget = pg.GraphicsLayoutWidget()
        QVBoxLayout(self).addWidget(self.layout_widget)
        self.acc = _plot(self.layout_widget, 0, "Accuracy", "accuracy")
        self.acc.setYRange(0, 1.02)
        self.loss = _plot(self.layout_widget, 1, "Loss", "cross-entropy")
        self.pval = _plot(self.layout_widget, 2, "Verification p-value (binomial, chance = 1/classes)", "p-value",
                          PValueAxis())
        self.pval.setLogMode(y=True)
        self.pval.setYRange(-10, 0, padding=0.02)  # until there are values: 10⁻¹⁰ .. 1
        self.pval.enableAutoRange(y=True)
        self.pval.vb.setLimits(yMax=0.25)  # a p-value is at most 1 (the view is in log10 units: 10^0.25 = 1.8)
        for p in (self.loss, self.pval):
            p.setXLink(self.acc)
        self.pval.setLabel("bottom", "global step")
        align_left_axes(self.acc, self.loss, self.pval)
        self.curves = {
            "test_acc": marked_curve(self.acc, c["test"], "test accuracy"),
            "trigger_acc": marked_curve(self.acc, c["trigger"], "trigger accuracy"),
            "train_loss": self.loss.plot(pen=pg.mkPen(c["train"], width=1), name="training loss (per step)"),
            "test_loss": self.loss.plot(pen=pg.mkPen(c["test"], width=2), name="test loss"),
            "trigger_loss": self.loss.plot(pen=pg.mkPen(c["trigger"], width=2), name="trigger loss"),
            "p_value": marked_curve(self.pval, c["pvalue"], "p-value"),
        }
        self.marks = [StageMarks(self.acc, True), StageMarks(self.loss, False), StageMarks(self.pval, False)]
        self.revision = -1
        self.x_axis = GrowingXAxis(self.acc)

    @property
    def plots(self) -> dict[str, pg.PlotItem]:
        return {"accuracy": self.acc, "loss": self.loss, "p_value": self.pval}

    def clear(self) -> None:
        """Forget what was drawn: the next series is drawn in full, on a fresh step axis."""
        self.revision = -1
        self.x_axis.reset()

    def show_log(self, series: RunSeries) -> None:
        """A whole run (finished, or opened from a log): drawn, the step axis fitted to it."""
        self.show_series(series)
        self.x_axis.fit(series.last_step or max((r["global_step"] for r in series.eval_rows), default=1))

    def show_series(self, series: RunSeries) -> None:
        if series.revision == self.revision:
            return
        self.revision = series.revision
        for name in ("test_acc", "trigger_acc", "test_loss", "trigger_loss"):
            self.curves[name].setData(*series.column(name))
        x, p = series.column("p_value")
        keep = np.isfinite(p)
        self.curves["p_value"].setData(x[keep], np.clip(p[keep], 1e-300, 1.0))
        self.curves["train_loss"].setData(*series.loss_series())
        for m in self.marks:
            m.update(series)
        self.x_axis.update(series.last_step)


class DriftView(QWidget):
    """Total drift (L2, relative) and cosine similarity over time, and the per-layer heat map."""

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = plot_colors(mode)
        self.layout_widget = pg.GraphicsLayoutWidget()
        QVBoxLayout(self).addWidget(self.layout_widget)
        self.l2 = _plot(self.layout_widget, 0, "Weight drift from the stage's reference "
                                              "(initial weights while embedding, the watermarked model after)", "L2 distance")
        self.cos = _plot(self.layout_widget, 1, "Cosine similarity to the reference", "cosine")
        self.cos.setXLink(self.l2)
        align_left_axes(self.l2, self.cos)
        self.curves = {"drift_l2": marked_curve(self.l2, c["drift"], "L2 distance"),
                       "drift_cos": marked_curve(self.cos, c["cos"], "cosine similarity")}
        self.per_stage = True  # each stage's columns scaled to that stage's largest layer drift
        self.heat = self.layout_widget.addPlot(row=2, col=0, title="Per-layer drift, scaled within each stage "
                                                                   "(layers x evaluations)")
        self.heat.setLabel("bottom", "evaluation (in time order)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), label="L2 / stage maximum",
                                        interactive=False)
        self.colorbar.setImageItem(self.image, insert_in=self.heat)
        self.marks = [StageMarks(self.l2, True), StageMarks(self.cos, False)]
        self.layout_widget.ci.layout.setRowStretchFactor(2, 2)
        self.revision = -1
        self.x_axis = GrowingXAxis(self.l2)
        self.matrix = np.zeros((0, 0))

    @property
    def plots(self) -> dict[str, pg.PlotItem]:
        return {"drift_l2": self.l2, "drift_cos": self.cos, "layer_drift": self.heat}

    def scaled(self, series: RunSeries) -> np.ndarray:
        """The heat map with each stage's block divided by its own maximum.

        Embedding moves the weights far from their initial values; fine-tuning and restoration move
        them a little from the watermarked model. On one colour scale the later stages would be
        invisible; scaled per stage, each shows which layers it moves most.
        """
        m = self.matrix.copy()
        if len(series.eval_rows) != m.shape[1]:
            return m
        stage = np.asarray([r["stage"] for r in series.eval_rows])
        for k in np.unique(stage):
            cols = stage == k
            top = np.nanmax(m[:, cols]) if np.isfinite(m[:, cols]).any() else 0.0
            if top > 0:
                m[:, cols] /= top
        return m

    def clear(self) -> None:
        """Forget what was drawn: the next series is drawn in full, on a fresh step axis."""
        self.revision = -1
        self.x_axis.reset()

    def show_log(self, series: RunSeries) -> None:
        """A whole run (finished, or opened from a log): drawn, the step axis fitted to it."""
        self.show_series(series)
        self.x_axis.fit(series.last_step or max((r["global_step"] for r in series.eval_rows), default=1))

    def show_series(self, series: RunSeries) -> None:
        if series.revision == self.revision:
            return
        self.revision = series.revision
        for name in self.curves:
            self.curves[name].setData(*series.column(name))
        for m in self.marks:
            m.update(series)
        self.x_axis.update(series.last_step)
        self.matrix = series.layer_matrix("l2")
        if self.matrix.size:
            shown = self.scaled(series) if self.per_stage else self.matrix
            self.image.setImage(shown, autoLevels=False)
            hi = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
            self.colorbar.setLevels((0.0, max(hi, 1e-12)))
            names = series.layer_names or [str(i) for i in range(self.matrix.shape[0])]
            step = max(1, len(names) // 24)
            self.heat.getAxis("left").setTicks([[(i + 0.5, n) for i, n in enumerate(names) if i % step == 0]])
