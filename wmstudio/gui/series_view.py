"""The base of the app's run plots: a stack of plots on one global-step axis, each stage's start marked and
named above them, the x axis growing with a live run, a hover read-out and an empty-state note.
:class:`~wmstudio.gui.metrics_view.MetricsView` and :class:`~wmstudio.gui.drift_view.DriftView` derive from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.plot_parts import (
    Crosshair,
    OverlayNote,
    RoomyAxis,
    StageAxis,
    nearest,
    set_marked_data,
    shrinkable_title,
    title_legend,
)
from wmstudio.gui.series import NOT_JUDGED, RunSeries, StageSpan
from wmstudio.metric_names import STAGE_LABELS

MIN_ROW_PX = 240  # a plot of the view (title, legend and data area) keeps at least this height


def series_plot(layout: pg.GraphicsLayoutWidget, row: int, title: str, ylabel: str,
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
    shrinkable_title(p)
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



def stage_at(stages: list[StageSpan], step: float) -> str:
    """The display name of the stage that holds a step (a step on a boundary ends the earlier stage)."""
    for k, sp in enumerate(stages):
        if k + 1 == len(stages) or step <= stages[k + 1].start_step:
            return STAGE_LABELS.get(sp.name, sp.name)
    return ""


def format_value(name: str, v: float) -> str:
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
    WAITING = "Nothing to plot yet: the run's first evaluation is still to come."
    ROWS = 3  # plots stacked in the view
    # set by each view once its plots exist
    marks: list[StageMarks]
    x_axis: GrowingXAxis
    crosshair: Crosshair

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

    def note_rows(self, series: RunSeries) -> None:
        """The note over the plots while ``series`` has no rows: a run that has started but not evaluated yet
        (Neural Cleanse evaluates at its end) is said to be one, not "no run to show"."""
        if series.eval_rows or series.train_steps:
            self.empty.setVisible(False)
            return
        self.empty.setText(self.WAITING if series.stages else self.EMPTY)
        self.empty.setVisible(True)

    def clear(self) -> None:
        """Empty every plot (another log is opened, or a new run starts) and say what to do."""
        self._clear_data()
        for m in self.marks:
            m.clear()
        self.x_axis.reset()
        self.crosshair.hide()
        self.show_empty()

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
                parts.append(f"{label(name)} {format_value(name, float(values[i]))}")
        return best, "   ".join(parts)

