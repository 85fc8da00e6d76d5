"""Live plots of one run: accuracies, losses, the verification p-value, weight drift, per-layer drift.

All stages share one time axis (the global optimiser step) with the stage boundaries marked. The
plots read a :class:`RunSeries` and redraw only when its revision changed; long runs are
downsampled for display (peak mode, clipped to the view).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.plot_parts import (
    LEFT_AXIS_PX,
    Crosshair,
    OverlayNote,
    RoomyAxis,
    StageAxis,
    align_left_axes,
    marked_curve,
    nearest,
    set_marked_data,
    title_legend,
)
from wmstudio.gui.series import NOT_JUDGED, RunSeries, StageSpan
from wmstudio.gui.theme import plot_colors
from wmstudio.metric_names import METRIC_LABELS, SHORT_LABELS, STAGE_LABELS

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
LABEL_PX = 26  # vertical room one p-value tick label needs
P_MIN_DECADES = 2.0  # the p-value plot's smallest height, in decades (two labelled ticks at least)
MIN_ROW_PX = 200  # a plot of the view (title, legend and data area) keeps at least this height


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
          left: pg.AxisItem | None = None, legend: bool = True) -> pg.PlotItem:
    """A plot of the view; ``legend``: a legend on the right of the title row (a plot of one curve that its
    axis title names has none: its long title, such as the drift's references, would run under it)."""
    p = layout.addPlot(row=row, col=0, axisItems={"left": left if left is not None else RoomyAxis("left")})
    p.showGrid(x=True, y=True, alpha=0.2)
    for side in ("left", "bottom"):
        p.getAxis(side).setStyle(maxTickLevel=0)  # grid at major ticks only: a dense grid costs most of a redraw
    p.setLabel("left", ylabel)
    p.setDownsampling(auto=True, mode="peak")
    p.setClipToView(True)
    if legend:
        title_legend(p, title)
    else:
        p.setTitle(title, justify="left", size="10pt")
    return p


class StageMarks:
    """Dashed vertical lines at the start of each stage, kept in sync with the series.

    The stage names are not drawn inside the plot (they would cover the data) but by a
    :class:`StageAxis` above it.
    """

    def __init__(self, plot: pg.PlotItem, labels: bool) -> None:
        self.plot, self.lines = plot, []
        self.axis = StageAxis() if labels else None
        if self.axis is not None:
            plot.setAxisItems({"top": self.axis})
            plot.showAxis("top")

    def update(self, series: RunSeries) -> None:
        if self.axis is not None:
            self.axis.set_stages([(float(sp.start_step), stage_title(series, k)) for k, sp in enumerate(series.stages)])
        if len(self.lines) == len(series.stages):
            return
        self._remove_lines()
        for sp in series.stages:
            line = pg.InfiniteLine(sp.start_step, angle=90, movable=False,
                                   pen=pg.mkPen("#888888", style=pg.QtCore.Qt.PenStyle.DashLine))
            self.plot.addItem(line, ignoreBounds=True)
            self.lines.append(line)

    def _remove_lines(self) -> None:
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []

    def clear(self) -> None:
        self._remove_lines()
        if self.axis is not None:
            self.axis.set_stages([])


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


COLLAPSED_MARK = " ⚠ collapsed"


def stage_title(series: RunSeries, k: int) -> str:
    """A stage's name above the plots, marked when its model is collapsed (near chance or one class):
    its trigger accuracy then says nothing about a watermark."""
    name = series.stages[k].name
    return STAGE_LABELS.get(name, name) + (COLLAPSED_MARK if series.stage_collapsed(k) else "")


REFERENCE_WORDS = {"initial": "the run's initial weights", "watermarked": "the watermarked model",
                   "copy_initial": "the copy's initial weights", "stolen": "the extracted copy"}


def reference_words(stage: str, reference: str) -> str:
    """What a stage's drift is measured from, in words, from the reference its log records."""
    if reference.endswith("_start"):
        start = reference[:-len("_start")]
        return "its own start" if start == stage else f"the start of {STAGE_LABELS.get(start, start)}"
    return REFERENCE_WORDS.get(reference, reference or "its reference (the log does not say which)")


def drift_title(stages: list[StageSpan]) -> str:
    """The drift plot's title: what each stage's drift is measured from, as its log records it."""
    if not stages:
        return "Weight drift from each stage's reference"
    words = [reference_words(sp.name, sp.drift_reference) for sp in stages]
    if len(set(words)) == 1:
        return f"Weight drift from {words[0]}"
    return "Weight drift from: " + "; ".join(f"{STAGE_LABELS.get(sp.name, sp.name)}: {w}"
                                            for sp, w in zip(stages, words, strict=True))


def stage_at(stages: list[StageSpan], step: float) -> str:
    """The display name of the stage that holds a step (a step on a boundary ends the earlier stage)."""
    for k, sp in enumerate(stages):
        if k + 1 == len(stages) or step <= stages[k + 1].start_step:
            return STAGE_LABELS.get(sp.name, sp.name)
    return ""


def _fmt(name: str, v: float) -> str:
    if not math.isfinite(v):
        return "not recorded" if name in ("control_acc", "trigger_effect", "collapsed") else "–"
    if name == "collapsed":
        return ("not judged (the stage's starting point)" if v == NOT_JUDGED else
                "YES (near chance or one class)" if v == 1.0 else "no")
    if name == "trigger_effect":
        return f"{v:+.3f}"
    if name == "p_value":
        return f"{v:.2e}"
    return f"{v:.3f}" if name.endswith("acc") or name == "drift_cos" else f"{v:.4g}"


class SeriesView(QWidget):
    """The plots of a run on one global-step axis, with a hover read-out and an empty-state note."""

    EMPTY = "No run to show: open a run log (File ▸ Open…, Ctrl+O) or press Run."
    ROWS = 3  # plots stacked in the view

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.empty = OverlayNote(self.EMPTY, self.layout_widget)
        self.readout = QLabel(" ")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long read-out never widens the plots
        self.readout.setToolTip("the values under the mouse (step, stage and every curve of that plot)")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)  # the plots keep the room they had before the read-out
        box.setSpacing(2)
        # the plots keep a readable height; a window too low for them scrolls them (at 800x550 the
        # data areas had shrunk to 20 px under their titles and legends)
        self.layout_widget.setMinimumHeight(self.ROWS * MIN_ROW_PX)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.layout_widget)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        box.addWidget(self.scroll, 1)
        box.addWidget(self.readout)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.marked: set[str] = set()  # the curves made by marked_curve (dots while they have few points)
        self.data: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # what each curve shows, for the read-out
        self.stages: list[StageSpan] = []
        self.revision = -1

    def show_empty(self, text: str | None = None) -> None:
        """Say in the view what to do to fill it (the plots stay, empty)."""
        self.empty.setText(text or self.EMPTY)
        self.empty.setVisible(True)

    def _set(self, name: str, x: np.ndarray, y: np.ndarray) -> None:
        if name in self.marked:
            set_marked_data(self.curves[name], x, y)
        else:
            self.curves[name].setData(x, y)
        self.data[name] = (x, y)

    def _clear_data(self) -> None:
        for name, curve in self.curves.items():
            curve.setData([], [])
            self.data[name] = (np.zeros(0), np.zeros(0))
        self.stages = []
        self.revision = -1

    def _read(self, names: list[str], x: float, label: Callable[[str], str]) -> tuple[float, str]:
        """The read-out at the curves' point nearest to step ``x``: (that step, text)."""
        best = None
        for name in names:
            steps = self.data.get(name, (np.zeros(0),))[0]
            i = nearest(steps, x)
            if i >= 0 and (best is None or abs(steps[i] - x) < abs(best - x)):
                best = float(steps[i])
        if best is None:
            return x, ""
        parts = [f"step {int(round(best))}"]
        stage = stage_at(self.stages, best)
        if stage:
            parts.append(stage)
        for name in names:
            steps, values = self.data.get(name, (np.zeros(0), np.zeros(0)))
            i = nearest(steps, best)
            if i >= 0 and steps[i] == best:
                parts.append(f"{label(name)} {_fmt(name, float(values[i]))}")
        return best, "   ".join(parts)


class MetricsView(SeriesView):
    """Accuracy, loss and p-value over global steps, all stages on one axis."""

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = plot_colors(mode)
        self.acc = _plot(self.layout_widget, 0, "Accuracy", "accuracy")
        self.acc.setYRange(0, 1.02)
        self.loss = _plot(self.layout_widget, 1, "Loss", "cross-entropy")
        self.pval = _plot(self.layout_widget, 2, "Verification p-value (binomial, chance = 1/classes)", "p-value",
                          PValueAxis())
        self.pval.setLogMode(y=True)
        self.pval.setYRange(-10, 0, padding=0.02)  # until there are values: 10⁻¹⁰ .. 1
        self.pval.enableAutoRange(y=True)
        # a p-value is at most 1 (the view is in log10 units: 10^0.25 = 1.8); the view spans at least
        # P_MIN_DECADES, so a change too small to matter (1 -> 0.9997) stays flat between labelled decades
        self.pval.vb.setLimits(yMax=0.25, minYRange=P_MIN_DECADES)
        for p in (self.loss, self.pval):
            p.setXLink(self.acc)
        self.pval.setLabel("bottom", "global step")
        align_left_axes(self.acc, self.loss, self.pval)
        self.curves = {
            "test_acc": marked_curve(self.acc, c["test"], METRIC_LABELS["test_acc"]),
            "trigger_acc": marked_curve(self.acc, c["trigger"], METRIC_LABELS["trigger_acc"]),
            "control_acc": self.acc.plot(pen=pg.mkPen(c["trigger"], width=2, style=Qt.PenStyle.DashLine),
                                         name="control: trigger labels without the trigger"),
            "train_loss": self.loss.plot(pen=pg.mkPen(c["train"], width=1), name=f"{METRIC_LABELS['train_loss']} (per step)"),
            "test_loss": self.loss.plot(pen=pg.mkPen(c["test"], width=2), name=METRIC_LABELS["test_loss"]),
            "trigger_loss": self.loss.plot(pen=pg.mkPen(c["trigger"], width=2), name=METRIC_LABELS["trigger_loss"]),
            "p_value": marked_curve(self.pval, c["pvalue"], METRIC_LABELS["p_value"]),
        }
        self.marked = {"test_acc", "trigger_acc", "p_value"}
        self.marks = [StageMarks(self.acc, True), StageMarks(self.loss, False), StageMarks(self.pval, False)]
        self.x_axis = GrowingXAxis(self.acc)
        self.crosshair = Crosshair(self.layout_widget, [self.acc, self.loss, self.pval], self.readout, self._describe)
        self._clear_data()

    @property
    def plots(self) -> dict[str, pg.PlotItem]:
        return {"accuracy": self.acc, "loss": self.loss, "p_value": self.pval}

    def clear(self) -> None:
        """Empty every plot (another log is opened, or a new run starts) and say what to do."""
        self._clear_data()
        for m in self.marks:
            m.clear()
        self.x_axis.reset()
        self.crosshair.hide()
        self.show_empty()

    def _describe(self, plot: pg.PlotItem, x: float, _y: float) -> tuple[float, str]:
        names = {self.acc: ["test_acc", "trigger_acc", "control_acc", "trigger_effect", "collapsed"], self.loss: ["train_loss", "test_loss", "trigger_loss"],
                 self.pval: ["p_value"]}[plot]
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
        self._set("train_loss", *series.loss_series())
        for m in self.marks:
            m.update(series)
        self.x_axis.update(series.last_step)
        self.empty.setVisible(not (series.eval_rows or series.train_steps))


class DriftView(SeriesView):
    """Total drift (L2) and cosine similarity over time, and the per-layer heat map, on one step axis.

    The heat map's columns are placed at the steps of the evaluations they hold (each evaluation
    colours the steps since the one before), so it lines up with the plots above and the stage
    boundaries. One colour scale spans every stage, so stages can be compared; ``set_per_stage``
    scales each stage to its own largest layer drift instead, which shows the small moves of the
    attack and restore stages after the large one of embedding.
    """

    MAX_COLUMNS = 2000  # the heat map's resolution along the steps

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = plot_colors(mode)
        self.per_stage_box = QCheckBox("scale each stage to its own maximum")
        self.per_stage_box.setToolTip("Off: one colour scale for every stage (comparable across stages). On: each "
                                      "stage's columns divided by that stage's largest layer drift.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Per-layer drift colours:"))
        row.addWidget(self.per_stage_box)
        row.addStretch(1)
        self.layout().insertLayout(1, row)
        self.l2 = _plot(self.layout_widget, 0, drift_title([]), "L2 distance", legend=False)
        self.cos = _plot(self.layout_widget, 1, "Cosine similarity to the reference", "cosine similarity", legend=False)
        self.heat = self.layout_widget.addPlot(row=2, col=0, axisItems={"left": RoomyAxis("left")})  # names thinned to fit
        self.heat.setTitle("Per-layer drift (L2 from the stage's reference)", justify="left", size="10pt")
        self.heat.setLabel("bottom", "global step")
        self.heat.setLabel("left", "layer")
        self.heat.getAxis("left").enableAutoSIPrefix(False)
        self.heat.getAxis("left").setTicks([[]])  # its ticks name the layers; with no run there are none
        self.heat.invertY(True)  # the first layer on top
        for p in (self.cos, self.heat):
            p.setXLink(self.l2)
        self.axis_px = LEFT_AXIS_PX
        align_left_axes(self.l2, self.cos, self.heat)
        self.curves = {"drift_l2": marked_curve(self.l2, c["drift"], "L2 distance"),
                       "drift_cos": marked_curve(self.cos, c["cos"], "cosine similarity")}
        self.marked = set(self.curves)
        self.per_stage = False
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat.addItem(self.image)
        # below the map, so the heat map's data area is as wide as the plots above it
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), label="L2 distance", interactive=False,
                                        orientation="horizontal")
        self.colorbar.setImageItem(self.image, insert_in=self.heat)
        self.colorbar.axis.enableAutoSIPrefix(False)
        self.marks = [StageMarks(self.l2, True), StageMarks(self.cos, False), StageMarks(self.heat, False)]
        self.layout_widget.ci.layout.setRowStretchFactor(2, 2)
        self.x_axis = GrowingXAxis(self.l2)
        self.matrix = np.zeros((0, 0))  # (layers, evaluations): L2 drift of each layer
        self.shown = np.zeros((0, 0))  # the same on the colour scale (divided per stage when so set)
        self.steps = np.zeros(0)  # the global step of each column of the matrix
        self.layer_names: list[str] = []
        self.x_range = (0.0, 0.0)  # the steps the heat map covers
        self.crosshair = Crosshair(self.layout_widget, [self.l2, self.cos, self.heat], self.readout, self._describe)
        self.per_stage_box.toggled.connect(self.set_per_stage)
        self._series: RunSeries | None = None
        self._clear_data()

    @property
    def plots(self) -> dict[str, pg.PlotItem]:
        return {"drift_l2": self.l2, "drift_cos": self.cos, "layer_drift": self.heat}

    def clear(self) -> None:
        """Empty every plot and the heat map (another log is opened, or a new run starts)."""
        self._clear_data()
        self.l2.setTitle(drift_title([]), justify="left", size="10pt")
        self._series = None
        self.matrix, self.shown, self.steps = np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0)
        self.image.clear()
        self.heat.getAxis("left").setTicks([[]])  # no layers: no numbers (they read as "layer x0.001, -400")
        for m in self.marks:
            m.clear()
        self.x_axis.reset()
        self.crosshair.hide()
        self.show_empty()

    def set_per_stage(self, on: bool) -> None:
        """Colour each stage on its own scale (on) or every stage on one scale (off, the default)."""
        self.per_stage = bool(on)
        if self.per_stage_box.isChecked() != self.per_stage:
            self.per_stage_box.setChecked(self.per_stage)
        if self._series is not None:
            self._draw_heat(self._series)

    def column_stages(self, series: RunSeries) -> np.ndarray:
        """The stage index of each heat-map column."""
        n = self.matrix.shape[1]
        if len(series.eval_rows) == n:
            return np.asarray([int(r["stage"]) for r in series.eval_rows])
        starts = np.asarray([sp.start_step for sp in series.stages[1:]], dtype=np.float64)
        return np.searchsorted(starts, self.steps, side="left")

    def scaled(self, series: RunSeries) -> np.ndarray:
        """The heat map with each stage's block divided by its own maximum.

        Embedding moves the weights far from their initial values; fine-tuning and restoration move
        them a little from the watermarked model. On one colour scale the later stages are dark;
        scaled per stage, each shows which layers it moves most.
        """
        m = self.matrix.copy()
        stage = self.column_stages(series)
        for k in np.unique(stage):
            cols = stage == k
            top = np.nanmax(m[:, cols]) if np.isfinite(m[:, cols]).any() else 0.0
            if top > 0:
                m[:, cols] /= top
        return m

    def _describe(self, plot: pg.PlotItem, x: float, y: float) -> tuple[float, str]:
        if plot is not self.heat:
            return self._read(["drift_l2"] if plot is self.l2 else ["drift_cos"], x, SHORT_LABELS.__getitem__)
        if not self.shown.size:
            return x, ""
        j = self.column_at(x)
        i = int(math.floor(y))
        if j < 0 or not 0 <= i < self.shown.shape[0]:
            return x, ""
        step = float(self.steps[j])
        name = self.layer_names[i] if i < len(self.layer_names) else str(i)
        text = f"step {int(step)}   {stage_at(self.stages, step)}   layer {name}   L2 {self.matrix[i, j]:.4g}"
        if self.per_stage:
            text += f" ({self.shown[i, j]:.2f} of the stage's maximum)"
        return step, text

    def column_at(self, step: float) -> int:
        """The matrix column whose colour is drawn at a step (-1 outside the heat map)."""
        if not len(self.steps) or step < self.x_range[0] or step > self.x_range[1]:
            return -1
        return int(min(np.searchsorted(self.steps, step, side="left"), len(self.steps) - 1))

    def _draw_heat(self, series: RunSeries) -> None:
        self.matrix = series.layer_matrix("l2")
        n = self.matrix.shape[1]
        self.steps = np.asarray(series.layer_steps[:n], dtype=np.float64)
        if not self.matrix.size or len(self.steps) != n:
            self.shown = np.zeros((0, 0))
            self.image.clear()
            return
        self.shown = self.scaled(series) if self.per_stage else self.matrix
        first = min(self.steps[0], series.stages[0].start_step if series.stages else self.steps[0])
        last = self.steps[-1]
        if last <= first:
            first, last = first - 0.5, last + 0.5
        self.x_range = (float(first), float(last))
        cols = int(min(self.MAX_COLUMNS, max(1, math.ceil(last - first))))
        centres = first + (np.arange(cols) + 0.5) * (last - first) / cols
        idx = np.minimum(np.searchsorted(self.steps, centres, side="left"), n - 1)
        self.image.setImage(self.shown[:, idx], autoLevels=False)
        self.image.setRect(QRectF(first, 0.0, last - first, self.matrix.shape[0]))
        hi = float(np.nanmax(self.shown)) if np.isfinite(self.shown).any() else 1.0
        self.colorbar.setLevels((0.0, max(hi, 1e-12)))
        self.colorbar.axis.setLabel("L2 / the stage's maximum" if self.per_stage else "L2 distance (all stages)")
        names = series.layer_names or [str(i) for i in range(self.matrix.shape[0])]
        if names != self.layer_names:
            self.layer_names = list(names)
            step = max(1, len(names) // 24)
            self.heat.getAxis("left").setTicks([[(i + 0.5, nm) for i, nm in enumerate(names) if i % step == 0]])
            width = max(QFontMetricsF(QFont()).horizontalAdvance(nm) for nm in names) + 16
            px = int(min(200, max(LEFT_AXIS_PX, width)))
            if px != self.axis_px:
                self.axis_px = px
                align_left_axes(self.l2, self.cos, self.heat, width=px)

    def show_log(self, series: RunSeries) -> None:
        """A whole run (finished, or opened from a log): drawn, the step axis fitted to it."""
        self.show_series(series)
        self.x_axis.fit(series.last_step or max((r["global_step"] for r in series.eval_rows), default=1))

    def show_series(self, series: RunSeries) -> None:
        if series.revision == self.revision:
            return
        self.revision = series.revision
        self._series = series
        self.stages = series.stages
        title = drift_title(series.stages)
        if title != self.l2.titleLabel.text:
            self.l2.setTitle(title, justify="left", size="10pt")
        for name in self.curves:
            self._set(name, *series.column(name))
        for m in self.marks:
            m.update(series)
        self.x_axis.update(series.last_step)
        self._draw_heat(series)
        self.empty.setVisible(not (series.eval_rows or series.train_steps))
