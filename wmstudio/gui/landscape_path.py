"""The landscape tab's 1D path: loss and accuracy along a path landscape (line, hessian_line, curve), the
models marked where they lie on it, a curve's straight segment dashed beside it, and a crosshair read-out."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from wmstudio.gui.landscape_parts import legend_brush, legend_text
from wmstudio.gui.plot_parts import Crosshair, StageAxis, align_left_axes, nearest, title_legend
from wmstudio.landscape.figures import LABELS, MODEL_STYLE
from wmstudio.landscape.kinds.base import stored_kind
from wmstudio.landscape.store import Landscape

CLEAN_COLOR, TRIGGER_COLOR = "#2f7ed8", "#e4572e"


def _words(name: str) -> str:
    """A curve's legend words: "test_loss" -> "clean loss"."""
    return f"{'clean' if name.startswith('test') else 'trigger'} {name.split('_')[1]}"


class LandscapePath(QWidget):
    """Two linked plots (loss above accuracy) along the path, the models' names above them, and a read-out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ls: Landscape | None = None  # the path drawn (the read-out reads it)
        self.path_widget = pg.GraphicsLayoutWidget()
        self.path_models = StageAxis()  # the models' names above the plots, off the curves
        self.path_loss = self.path_widget.addPlot(row=0, col=0, axisItems={"top": self.path_models})
        self.path_loss.showAxis("top")
        self.path_acc = self.path_widget.addPlot(row=1, col=0)
        self.path_acc.setXLink(self.path_loss)
        align_left_axes(self.path_loss, self.path_acc)
        self.path_acc.setLabel("bottom", "distance along the path (parameter space)")
        self.path_curves: dict[str, pg.PlotDataItem] = {}
        for plot, which in ((self.path_loss, "loss"), (self.path_acc, "acc")):
            title_legend(plot, "Loss along the path" if which == "loss" else "Accuracy along the path", size="9pt",
                         brush=legend_brush(), pen=pg.mkPen(legend_text()), labelTextColor=legend_text())
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.getAxis("bottom").enableAutoSIPrefix(False)  # both plots read the same distances
            self.path_curves[f"test_{which}"] = plot.plot(pen=pg.mkPen(CLEAN_COLOR, width=2), name=f"clean {which}")
            self.path_curves[f"trigger_{which}"] = plot.plot(pen=pg.mkPen(TRIGGER_COLOR, width=2), name=f"trigger {which}")
        self.path_lines: list[pg.InfiniteLine] = []
        self.straight_curves: dict[str, pg.PlotDataItem] = {}  # a curve landscape's straight segment (dashed)
        self.path_readout = QLabel(" ")
        self.path_readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long read-out never widens the plots
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.path_widget, 1)
        layout.addWidget(self.path_readout)
        self.path_crosshair = Crosshair(self.path_widget, [self.path_loss, self.path_acc], self.path_readout,
                                        self.describe_at)

    @property
    def export_item(self) -> pg.GraphicsLayout:
        """What an export of the path draws: both plots with their axes."""
        return self.path_widget.ci

    def clear(self) -> None:
        """Empty both plots (the curves stay for reuse)."""
        self.ls = None
        for curve in self.path_curves.values():
            curve.setData([], [])
        self._clear_lines()
        self.path_models.set_stages([])

    def draw(self, ls: Landscape, log_scale: bool) -> None:
        """Draw the path landscape ``ls`` (the loss on a log axis when ``log_scale``)."""
        self.ls = ls
        t = ls.axes["t"]
        for name, curve in self.path_curves.items():
            v = ls.metrics[name].copy()
            curve.setData(t[np.isfinite(v)], v[np.isfinite(v)])
        self._draw_straight(ls)
        self.path_acc.setLabel("bottom", stored_kind(ls.kind).path_label(ls.attrs))
        self.path_loss.setLogMode(y=log_scale)
        self._clear_lines()
        models = sorted((float(pos), MODEL_STYLE.get(name, ("", name))[1])
                        for name, pos in zip(ls.model_names, ls.model_coords, strict=False))
        self.path_models.set_stages(models)
        for plot in (self.path_loss, self.path_acc):
            for pos, _ in models:
                line = pg.InfiniteLine(pos, angle=90, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine))
                plot.addItem(line)
                self.path_lines.append(line)

    def _draw_straight(self, ls: Landscape) -> None:
        """A curve landscape's straight segment, dashed, beside the curve (removed for other paths); the
        solid lines' legend says "curve" while a curve is shown."""
        for plot in (self.path_loss, self.path_acc):
            for sample, label in plot.legend.items if plot.legend is not None else []:
                name = next((n for n, item in self.path_curves.items() if item is sample.item), "")
                if name:
                    label.setText(f"{_words(name)}, curve" if ls.line_metrics else _words(name))
        if not ls.line_metrics:
            for name, item in self.straight_curves.items():
                (self.path_loss if name.endswith("loss") else self.path_acc).removeItem(item)
            self.straight_curves = {}
            return
        for name in self.path_curves:
            if name not in self.straight_curves:
                plot = self.path_loss if name.endswith("loss") else self.path_acc
                colour = CLEAN_COLOR if name.startswith("test") else TRIGGER_COLOR
                self.straight_curves[name] = plot.plot(pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine),
                                                       name=f"{_words(name)}, straight line")
            v = ls.line_metrics[name]
            ok = np.isfinite(v) & ls.done
            self.straight_curves[name].setData(ls.axes["t"][ok], v[ok])

    def describe_at(self, plot: pg.PlotItem, x: float, _y: float) -> tuple[float, str]:
        """The read-out: the distance along the path nearest ``x`` and the plot's values there."""
        ls = self.ls
        if ls is None or ls.is_2d or not ls.done.any():
            return x, ""
        t = ls.axes["t"]
        i = nearest(t, x)
        which = "loss" if plot is self.path_loss else "acc"
        parts = [f"{stored_kind(ls.kind).position_word} {t[i]:.4g}"]
        parts += [MODEL_STYLE.get(n, ("", n))[1] for n, pos in zip(ls.model_names, ls.model_coords, strict=False)
                  if abs(float(pos) - t[i]) < 1e-9]
        for m in (f"test_{which}", f"trigger_{which}"):
            v = float(ls.metrics[m][i])
            parts.append(f"{LABELS[m]} {v:.4g}" if np.isfinite(v) else f"{LABELS[m]} not computed yet")
            if ls.line_metrics and np.isfinite(ls.line_metrics[m][i]):
                parts.append(f"(straight line {float(ls.line_metrics[m][i]):.4g})")
        return float(t[i]), "   ".join(parts)

    def _clear_lines(self) -> None:
        for line in self.path_lines:
            for plot in (self.path_loss, self.path_acc):
                if line in plot.items:
                    plot.removeItem(line)
        self.path_lines = []
