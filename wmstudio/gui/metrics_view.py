"""The Metrics tab: accuracies, losses and the verification p-value of one run, live, and the sharpness
(Hessian curvature) of its stage-end models when the run measured it.

All stages share one time axis (the global optimiser step) with the stage boundaries marked. The
plots read a :class:`RunSeries` and redraw only when its revision changed; long runs are
downsampled for display (peak mode, clipped to the view). The sharpness plot is in the stack only while
the shown run holds curvature (``run.curvature = "stage_ends"`` or ``wmstudio curvature``): an empty
plot would say nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QWidget,
)

from wmstudio.gui.plot_parts import (
    Crosshair,
    align_left_axes,
    marked_curve,
    set_marked_data,
)
from wmstudio.gui.series import RunSeries
from wmstudio.gui.series_view import (
    MIN_ROW_PX,
    GrowingXAxis,
    SeriesView,
    StageMarks,
    series_plot,
)
from wmstudio.gui.theme import plot_colors
from wmstudio.metric_names import CURVATURE_LABELS, METRIC_LABELS, SHORT_LABELS

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
LABEL_PX = 26  # vertical room one p-value tick label needs
IN_BETWEEN_PX = 18  # ... and one label of a short range's 2x and 5x ticks (one line of text, no superscript)
P_MIN_DECADES = 2.0  # the p-value plot's smallest height, in decades (two labelled ticks at least)


class DecadeAxis(pg.AxisItem):
    """A log axis (p-values, curvature): whole decades only, spaced so the labels never crowd, read as 10⁻ⁿ.

    pyqtgraph's own log axis adds an SI factor to the label ("x1e+09") that also shifts its tick
    values, and fills a short range with unlabelled-looking 2 3 4 … 9 minor ticks.
    """

    def __init__(self, in_between: bool = False, **kwargs: object) -> None:
        super().__init__("left", **kwargs)
        self.enableAutoSIPrefix(False)
        self.in_between = in_between  # a range of two decades or less also labels 2x and 5x each decade

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802 - pyqtgraph's name
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = min(minVal, maxVal), max(minVal, maxVal)
        room = max(2, int(size // LABEL_PX))
        span = max(1.0, math.ceil(hi) - math.floor(lo))
        step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000) if span / s <= room), 1000)
        first = math.ceil(lo / step - 1e-9) * step
        decades = [float(v) for v in np.arange(first, hi + 1e-9, step)]
        if self.in_between and hi - lo <= 2.0 and size // IN_BETWEEN_PX >= 3 * (hi - lo) + 2:
            within = [d + math.log10(f) for d in range(math.floor(lo), math.ceil(hi) + 1) for f in (2, 5)]
            return [(1.0, sorted(decades + [v for v in within if lo <= v <= hi]))]  # one level: the plots draw one
        return [(float(step), decades)]

    def tickStrings(self, values: list, scale: float, spacing: float) -> list[str]:  # noqa: N802
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [decade_word(v) for v in values]


def decade_word(v: float) -> str:
    """log10 value -> "1", "10³", "2·10³" (a tick of the decade axis)."""
    exponent = math.floor(v + 1e-9)
    mantissa = round(10 ** (v - exponent))
    power = "1" if exponent == 0 else "10" + str(exponent).translate(SUPERSCRIPT)
    return power if mantissa == 1 else (f"{mantissa}" if exponent == 0 else f"{mantissa}·{power}")



COLLAPSED_KEY = "collapsed model: a lean, not a watermark"


class MetricsView(SeriesView):
    """Accuracy, loss and p-value over global steps, all stages on one axis; the stage-end sharpness below
    them when the run measured it."""

    SHARP_ROW = 3

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = plot_colors(mode)
        self.acc = series_plot(self.layout_widget, 0, "Accuracy", "accuracy")
        self.acc.setYRange(0, 1.02)
        self.loss = series_plot(self.layout_widget, 1, "Loss", "cross-entropy")
        self.pval = series_plot(self.layout_widget, 2, "Verification p-value (binomial, chance = 1/classes)", "p-value",
                          DecadeAxis())
        self.pval.setLogMode(y=True)
        self.pval.setYRange(-10, 0, padding=0.02)  # until there are values: 10⁻¹⁰ .. 1
        self.pval.enableAutoRange(y=True)
        # a p-value is at most 1 (the view is in log10 units: 10^0.25 = 1.8); the view spans at least
        # P_MIN_DECADES, so a change too small to matter (1 -> 0.9997) stays flat between labelled decades
        self.pval.vb.setLimits(yMax=0.25, minYRange=P_MIN_DECADES)
        for p in (self.loss, self.pval):
            p.setXLink(self.acc)
        self.pval.setLabel("bottom", "global step")
        self.sharp = series_plot(self.layout_widget, self.SHARP_ROW, "Sharpness at each stage's end: the Hessian's "
                                 "top eigenvalue (—) and trace (- -)", "curvature", DecadeAxis(in_between=True))
        self.sharp.setXLink(self.acc)
        self.sharp.setLabel("bottom", "global step")
        align_left_axes(self.acc, self.loss, self.pval, self.sharp)
        self.curves = {
            "test_acc": marked_curve(self.acc, c["test"], METRIC_LABELS["test_acc"]),
            "trigger_acc": marked_curve(self.acc, c["trigger"], METRIC_LABELS["trigger_acc"]),
            "control_acc": self.acc.plot(pen=pg.mkPen(c["trigger"], width=2, style=Qt.PenStyle.DashLine),
                                         name="control: trigger labels without the trigger"),
            "train_loss": self.loss.plot(pen=pg.mkPen(c["train"], width=1), name=f"{METRIC_LABELS['train_loss']} (per step)"),
            "test_loss": self.loss.plot(pen=pg.mkPen(c["test"], width=2), name=METRIC_LABELS["test_loss"]),
            "trigger_loss": self.loss.plot(pen=pg.mkPen(c["trigger"], width=2), name=METRIC_LABELS["trigger_loss"]),
            "p_value": marked_curve(self.pval, c["pvalue"], METRIC_LABELS["p_value"]),
            # the evaluations whose model is collapsed (near chance or one class): their small p-value is a
            # lean towards the target class, not a watermark (a fixed legend key: entries added and removed
            # as runs change were suspected in a crash of the suite)
            "p_collapsed": self.pval.plot(pen=None, symbol="x", symbolSize=13, symbolPen=pg.mkPen(c["trigger"], width=2),
                                          symbolBrush=pg.mkBrush(c["trigger"]), name=COLLAPSED_KEY),
        }
        for loss, colour in (("clean", c["test"]), ("trigger", c["trigger"])):
            self.curves[f"{loss}.top_eigenvalue"] = marked_curve(self.sharp, colour, CURVATURE_LABELS[f"{loss}.top_eigenvalue"])
            self.curves[f"{loss}.trace"] = self.sharp.plot(
                pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine), symbol="s", symbolSize=6,
                symbolPen=pg.mkPen(colour), symbolBrush=pg.mkBrush(colour), name=CURVATURE_LABELS[f"{loss}.trace"])
        self.marked = {"test_acc", "trigger_acc", "p_value", "clean.top_eigenvalue", "trigger.top_eigenvalue"}
        # the sharpness plot names the stages too: it is below the fold, and exported on its own
        self.marks = [StageMarks(self.acc, True), StageMarks(self.loss, False), StageMarks(self.pval, False),
                      StageMarks(self.sharp, True)]
        self.x_axis = GrowingXAxis(self.acc)
        self.crosshair = Crosshair(self.layout_widget, [self.acc, self.loss, self.pval, self.sharp], self.readout,
                                   self._describe)
        self.sharp_shown = True
        self._show_sharpness(False)
        self._clear_data()

    @property
    def plots(self) -> dict[str, pg.PlotItem]:
        shown = {"accuracy": self.acc, "loss": self.loss, "p_value": self.pval}
        return {**shown, "sharpness": self.sharp} if self.sharp_shown else shown

    def _show_sharpness(self, show: bool) -> None:
        """The sharpness plot in the stack (below the p-value, which then leaves it the step axis' title) or out.

        Out of the grid only: it stays in the scene, a child of the layout like the other plots, so a theme
        switch restyles it and it is destroyed with them (taken out of the scene, it missed theme switches and
        would outlive the view's other plots, its x axis linked to one of them)."""
        if show == self.sharp_shown:
            return
        self.sharp_shown = show
        grid = self.layout_widget.ci.layout
        if show:
            grid.addItem(self.sharp, self.SHARP_ROW, 0)
        else:
            grid.removeItem(self.sharp)
        self.sharp.setVisible(show)
        if show:
            self.pval.getAxis("bottom").showLabel(False)
        else:
            self.pval.setLabel("bottom", "global step")
        self.layout_widget.setMinimumHeight((self.ROWS + int(show)) * MIN_ROW_PX)

    def _describe(self, plot: pg.PlotItem, x: float, _y: float) -> tuple[float, str]:
        if plot is self.sharp:
            names = [n for n in self.curves if n.endswith((".top_eigenvalue", ".trace"))]
            return self._read(names, x, CURVATURE_LABELS.__getitem__)
        names = {self.acc: ["test_acc", "trigger_acc", "control_acc", "trigger_effect", "collapsed"], self.loss: ["train_loss", "test_loss", "trigger_loss"],
                 self.pval: ["p_value", "collapsed"]}[plot]
        return self._read(names, x, SHORT_LABELS.__getitem__)

    def show_log(self, series: RunSeries) -> None:
        """A whole run (finished, or opened from a log): drawn, the step axis fitted to it."""
        self.show_series(series)
        self.x_axis.fit(series.last_step or max((r["global_step"] for r in series.eval_rows), default=1))

    def show_series(self, series: RunSeries) -> None:
        if series.revision == self.revision:
            return
        self.revision = series.revision
        self.stages = series.stages
        for name in ("test_acc", "trigger_acc", "control_acc", "test_loss", "trigger_loss"):
            self._set(name, *series.column(name))
        self.data["trigger_effect"] = series.column("trigger_effect")  # read out under the mouse, not drawn
        self.data["collapsed"] = series.collapse_column()
        x, p = series.column("p_value")
        keep = np.isfinite(p)
        set_marked_data(self.curves["p_value"], x[keep], np.clip(p[keep], 1e-300, 1.0))
        self.data["p_value"] = (x[keep], p[keep])
        flagged = self.data["collapsed"][1]
        flagged = keep & (flagged == 1.0) if len(flagged) == len(p) else np.zeros(len(p), dtype=bool)
        self.curves["p_collapsed"].setData(x[flagged], np.clip(p[flagged], 1e-300, 1.0))
        self._set("train_loss", *series.loss_series())
        self._show_curvature(series)
        for m in self.marks:
            m.update(series)
        self.x_axis.update(series.last_step)
        self.note_rows(series)

    def _show_curvature(self, series: RunSeries) -> None:
        """The whole-model curvature series (the series holds no per-layer ones); a decade axis while every
        value is positive (eigenvalues and traces span decades between stages), a linear one otherwise (a
        negative trace is a measurement to show, not to drop)."""
        self._show_sharpness(bool(series.curvature))
        ys = []
        for name in [n for n in self.curves if n.endswith((".top_eigenvalue", ".trace"))]:
            key, value = name.split(".")
            x, y = series.curvature_column(key, value)
            keep = np.isfinite(y)
            self._set(name, x[keep], y[keep])
            ys.append(y[keep])
        values = np.concatenate(ys)
        log = bool(len(values)) and bool(np.all(values > 0))
        if log != self.sharp.ctrl.logYCheck.isChecked():
            self.sharp.setLogMode(y=log)
