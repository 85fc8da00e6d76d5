"""Several runs on the same axes: one metric over global steps per run, and their final values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.controller import differing_keys, flatten_config
from wmstudio.gui.metrics_view import stage_at
from wmstudio.gui.plot_parts import (
    OverlayNote,
    hover_mark,
    marked_curve,
    nearest,
    set_marked_data,
    title_legend,
)
from wmstudio.gui.series import RunSeries
from wmstudio.metric_names import METRIC_LABELS

METRIC_NAMES = {k: METRIC_LABELS[k] for k in ("trigger_acc", "test_acc", "trigger_loss", "test_loss", "drift_l2",
                                              "drift_cos", "p_value")}
PALETTE = ("#2f7ed8", "#e4572e", "#3aa655", "#8e44ad", "#c9a227", "#17becf", "#d62728", "#7f7f7f")
LEGEND_COLUMNS = 4
HOVER_PX = 40  # the read-out names the run whose point is nearest the mouse, within this many pixels


class CompareView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[RunSeries] = []
        self.configs: list[dict] = []  # each run's config (as its log holds it), for "what differs"
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Metric"))
        self.metric_box = QComboBox()
        for k, v in METRIC_NAMES.items():
            self.metric_box.addItem(v, k)
        self.metric_box.setToolTip("the evaluation series drawn for every checked run")
        row.addWidget(self.metric_box)
        row.addStretch(1)
        layout.addLayout(row)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.list = QListWidget()
        self.list.setToolTip("runs opened in this session; uncheck to hide one")
        split.addWidget(self.list)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.legend = title_legend(self.plot, "")
        self.legend.setColumnCount(LEGEND_COLUMNS)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "global step")
        self.hover_dot = hover_mark(pg.ScatterPlotItem(size=11, pen=pg.mkPen("#888888", width=2), brush=pg.mkBrush(None)))
        self.hover_dot.setZValue(50)
        self.plot.addItem(self.hover_dot, ignoreBounds=True)
        self.empty = OverlayNote("No runs to compare: open run logs (File ▸ Open…) or run experiments; "
                                 "each one is listed here.", self.plot_widget)
        self.readout = QLabel(" ")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long read-out never widens the plots
        self.readout.setToolTip("the run, step, stage and value nearest the mouse")
        plot_box = QWidget()
        pv = QVBoxLayout(plot_box)
        pv.setContentsMargins(0, 0, 0, 0)
        pv.addWidget(self.plot_widget, 1)
        pv.addWidget(self.readout)
        split.addWidget(plot_box)
        split.setStretchFactor(1, 4)
        layout.addWidget(split, 3)
        self.table = QTableWidget(0, 8)
        self.table.setHorizontalHeaderLabels(["run", "settings that differ", "stages", "test acc",
                                              "trigger after embed", "after fine-tune", "after restore",
                                              "final drift (rel)"])
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.metric_box.currentIndexChanged.connect(self.redraw)
        self.list.itemChanged.connect(lambda _i: self.redraw())
        self.hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30,
                                          slot=lambda evt: self.hover_at(evt[0]))

    def add_run(self, series: RunSeries, config: dict | None = None) -> None:
        """Adds (or updates) a run; ``config``: its settings, so the table can say what differs."""
        for i, r in enumerate(self.runs):
            if r.log_path == series.log_path:
                self.runs[i] = series
                self.configs[i] = config if config is not None else self.configs[i]
                self._retitle()
                self.redraw()
                return
        self.runs.append(series)
        self.configs.append(config or {})
        item = QListWidgetItem(run_title(series, self.runs))
        item.setToolTip(series.log_path)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        self.list.addItem(item)
        self._retitle()
        self.redraw()

    def _retitle(self) -> None:
        """Every run's list entry: its name, told apart from a namesake by its file (no redraw for it)."""
        self.list.blockSignals(True)
        try:
            for i, r in enumerate(self.runs):
                self.list.item(i).setText(run_title(r, self.runs))
        finally:
            self.list.blockSignals(False)

    def differences(self, index: int) -> str:
        """The settings of run ``index`` that not every compared run shares ("key = value, ...")."""
        known = [c for c in self.configs if c]
        if len(known) < 2 or not self.configs[index]:
            return ""
        flat = flatten_config(self.configs[index])
        return ", ".join(f"{k} = {flat[k]!r}" if k in flat else f"{k} not set (an older log)"
                         for k in differing_keys(known))

    def checked(self) -> list[RunSeries]:
        return [r for i, r in enumerate(self.runs) if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def hover_at(self, scene_pos: QPointF) -> None:
        """Name the run, step, stage and value of the drawn point nearest a scene point (the mouse)."""
        vb = self.plot.vb
        best: tuple[float, RunSeries, float, float] | None = None
        if vb.sceneBoundingRect().contains(scene_pos):
            for r in self.checked():
                x, y = self.curves[r.log_path].getData()
                if x is None or not len(x):
                    continue
                i = nearest(np.asarray(x), vb.mapSceneToView(scene_pos).x())
                for k in {max(0, i - 1), i, min(len(x) - 1, i + 1)}:
                    if not math.isfinite(y[k]):
                        continue
                    d = math.dist((scene_pos.x(), scene_pos.y()), _xy(vb.mapViewToScene(QPointF(x[k], y[k]))))
                    if d <= HOVER_PX and (best is None or d < best[0]):
                        best = (d, r, float(x[k]), float(y[k]))
        if best is None:
            self.hover_dot.setData([], [])
            self.readout.setText(" ")
            return
        _, run, step, shown = best
        metric = self.metric_box.currentData()
        value = 10 ** shown if metric == "p_value" else shown  # the curve holds log10 p in log mode
        text = f"{metric_fmt(metric, value)}"
        self.hover_dot.setData([step], [shown])
        self.readout.setText(f"{run_title(run, self.runs)}   step {int(step)}   {stage_at(run.stages, step)}   "
                             f"{METRIC_NAMES[metric]} {text}")

    def redraw(self) -> None:
        metric = self.metric_box.currentData()
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.legend.clear()
        self.hover_dot.setData([], [])
        self.readout.setText(" ")
        self.plot.setLogMode(y=metric == "p_value")
        self.curves = {}
        for k, r in enumerate(self.runs):
            if self.list.item(k).checkState() != Qt.CheckState.Checked:
                continue
            x, y = r.column(metric)
            self.curves[r.log_path] = marked_curve(self.plot, PALETTE[k % len(PALETTE)], run_title(r, self.runs))
            set_marked_data(self.curves[r.log_path], x, y)
        self.plot.setLabel("left", METRIC_NAMES[metric])
        rows = max(1, math.ceil(len(self.curves) / LEGEND_COLUMNS))
        self.plot.layout.setRowFixedHeight(0, max(30, 22 * rows + 6))  # the legend's rows above the data
        self.empty.setVisible(not self.runs)
        self.table.setRowCount(len(self.runs))

        def fmt(v: float) -> str:
            return "" if math.isnan(v) else f"{v:.3f}"

        for i, r in enumerate(self.runs):
            values = [run_title(r, self.runs), self.differences(i), " → ".join(s.name for s in r.stages), fmt(r.final("test_acc")),
                      fmt(r.final("trigger_acc", "embed")), fmt(r.final("trigger_acc", "finetune")),
                      fmt(r.final("trigger_acc", "restore")), fmt(r.final("drift_rel"))]
            for j, v in enumerate(values):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self.table.resizeColumnsToContents()


def _xy(p: QPointF) -> tuple[float, float]:
    return p.x(), p.y()


def metric_fmt(metric: str, value: float) -> str:
    if metric == "p_value":
        return f"{value:.2e}"
    return f"{value:.3f}" if metric.endswith("acc") or metric == "drift_cos" else f"{value:.4g}"


def run_title(series: RunSeries, runs: list[RunSeries] | None = None) -> str:
    """The run's name (with its log's file name when another of ``runs`` has the same name), flagged
    when it did not finish (cancelled, failed, still running, partial stages)."""
    name = series.label or series.log_path
    if runs and sum((r.label or r.log_path) == name for r in runs) > 1:
        name = f"{name} ({Path(series.log_path).name})"
    unfinished = [s.name for s in series.stages if s.status not in ("finished", "stopped_early")]
    if series.log_status and series.log_status != "finished":
        return f"{name} ⚠ {series.log_status}"
    return f"{name} ⚠ partial ({', '.join(unfinished)})" if unfinished else name
