"""Several runs on the same axes, at the scale of a sweep: one metric per run, and their final values.

The run list on the left (it scrolls) names every run with its colour and a check box; a filter
above it keeps the runs whose name or settings match (``lr=0.01``, ``RTAL``). Each run has its own
distinct colour, or the colour of its value of a chosen setting. The curves can be smoothed as in
TensorBoard, and drawn over global steps or over the steps since a stage began (so a sweep cell's
attack, which starts at step 0, lies on the demo's, which starts at step 120). The colours,
smoothing, alignment and filter are computed in :mod:`wmstudio.gui.compare_curves` (Qt-free).

Drawing stays cheap with many runs: each run keeps one curve item, toggling or filtering a run only
shows or hides it, opening a run draws only that run, and with more than ``MARKS_MAX_RUNS`` curves
the dots on the points are left out (the hover read-out gives each point's value).
"""

from __future__ import annotations

import time
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QLabel,
    QListWidgetItem,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.compare_controls import (
    BY_RUN,
    METRIC_NAMES,
    SMOOTH_STEPS,
    CompareOptions,
    RunList,
)
from wmstudio.gui.compare_curves import (
    GLOBAL,
    align_key,
    alignments,
    distinct_colors,
    run_matches,
    setting_colors,
)
from wmstudio.gui.compare_items import CurveChoice, RunCurves, nearest_drawn
from wmstudio.gui.compare_legend import MAX_ENTRIES as LEGEND_MAX_ENTRIES
from wmstudio.gui.compare_legend import ColumnLegend
from wmstudio.gui.compare_table import RunTable
from wmstudio.gui.controller import differing_keys, flatten_config
from wmstudio.gui.plot_parts import OverlayNote, hover_mark, set_title
from wmstudio.gui.run_titles import metric_fmt, run_title, run_titles
from wmstudio.gui.series import RunSeries
from wmstudio.gui.series_view import stage_at
from wmstudio.metric_names import STAGE_LABELS

MARKS_MAX_RUNS = 10  # more drawn runs than this: lines without a dot on each point
FILTER_DELAY_MS = 120
CURVES_PER_TURN = 10  # curves always recomputed in one turn of the event loop; beyond them,
TURN_BUDGET_S = 0.012  # more only while a turn has taken less than this
COLOR_ROLE = Qt.ItemDataRole.UserRole + 1  # the colour a run list entry's swatch shows  # typing in the filter applies it once the typing pauses


def _swatch(color: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(color))
    return QIcon(pix)


class CompareView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[RunSeries] = []
        self.configs: list[dict] = []  # each run's config (as its log holds it), for "what differs"
        self.colors: list[str] = []  # each run's colour, as drawn
        self._flat: list[dict[str, Any]] = []  # each run's settings, flattened (dotted keys)
        self._differing: list[str] = []
        self._key_items: list[pg.PlotDataItem] = []  # legend samples of a colour-by-setting key
        self._color_key: list[tuple[str, str]] = []  # (value, colour) of the setting the runs are coloured by
        layout = QVBoxLayout(self)
        self.options = CompareOptions()
        layout.addWidget(self.options)
        o = self.options
        self.metric_box, self.align_box, self.color_box = o.metric_box, o.align_box, o.color_box
        self.smooth_slider, self.smooth_label = o.smooth_slider, o.smooth_label
        split = QSplitter(Qt.Orientation.Horizontal)
        self.run_list = RunList()
        r = self.run_list
        self.filter_edit, self.check_all, self.check_none = r.filter_edit, r.check_all, r.check_none
        self.list, self.count_label = r.list, r.count_label
        split.addWidget(self.run_list)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.run_curves = RunCurves(self.plot)
        self.items = self.run_curves.items  # every run's curve, drawn or hidden, by log path
        self.key = ColumnLegend(self.plot, self.plot_widget)
        self.legend = self.key.items
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for side in ("left", "bottom"):  # grid lines at major and minor ticks only: the finest level's lines
            self.plot.getAxis(side).setStyle(maxTickLevel=1)  # cost as much to paint as 100 curves
        self.plot.setLabel("bottom", "global step")
        self.plot.setLabel("left", METRIC_NAMES[self.metric_box.currentData()])  # before any metric is chosen too
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
        self.table = RunTable()
        layout.addWidget(self.table, 1)
        self._filter_timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS, timeout=self._refresh)
        self._legend_timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS, timeout=self._update_legend)
        self._more_timer = QTimer(self, singleShot=True, interval=0, timeout=self._update_curves)
        self._keep: set[int] = set()  # the runs the filter keeps
        self.metric_box.currentIndexChanged.connect(self.redraw)
        self.align_box.currentIndexChanged.connect(self.redraw)
        self.color_box.currentIndexChanged.connect(self._refresh)
        self.smooth_slider.valueChanged.connect(self._smoothing_changed)
        self.filter_edit.textChanged.connect(lambda _t: self._filter_timer.start())
        self.list.itemChanged.connect(self._toggled)
        self.check_all.clicked.connect(lambda: self._check_all(True))
        self.check_none.clicked.connect(lambda: self._check_all(False))
        self.hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30,
                                          slot=lambda evt: self.hover_at(evt[0]))

    # ------------------------------------------------------------ runs
    def add_run(self, series: RunSeries, config: dict | None = None) -> None:
        """Adds (or updates) a run; ``config``: its settings, so the table can say what differs.
        Only this run's curve is recomputed; the list, colours, legend and table follow."""
        for i, r in enumerate(self.runs):
            if r.log_path == series.log_path:
                self.runs[i] = series
                self.configs[i] = config if config is not None else self.configs[i]
                self._flat[i] = flatten_config(self.configs[i])
                break
        else:
            self.runs.append(series)
            self.configs.append(config or {})
            self._flat.append(flatten_config(config or {}))
            item = QListWidgetItem(run_title(series, self.runs))
            item.setToolTip(series.log_path)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.list.blockSignals(True)
            self.list.addItem(item)
            self.list.blockSignals(False)
        known = [c for c in self.configs if c]
        self._differing = differing_keys(known) if len(known) > 1 else []
        self.table.runs_changed()  # every row again: a name or what differs may have changed
        self._update_alignments()
        self._refresh()

    @property
    def curves(self) -> dict[str, pg.PlotDataItem]:
        """The curves drawn now (checked runs the filter keeps), by log path, in the list's order."""
        return {r.log_path: self.items[r.log_path] for r in self.runs
                if r.log_path in self.items and self.items[r.log_path].isVisible()}

    def differences(self, index: int) -> str:
        """The settings of run ``index`` that not every compared run shares ("key = value, ...")."""
        known = [c for c in self.configs if c]
        if len(known) < 2 or not self.configs[index]:
            return ""
        flat = self._flat[index]
        return ", ".join(f"{k} = {flat[k]!r}" if k in flat else f"{k} not set (an older log)" for k in self._differing)

    def checked(self) -> list[RunSeries]:
        return [r for i, r in enumerate(self.runs) if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def shown(self) -> list[int]:
        """Indices of the runs the filter keeps (checked or not)."""
        query = self.filter_edit.text()
        if not query.strip():
            return list(range(len(self.runs)))
        titles = run_titles(self.runs)
        return [i for i in range(len(self.runs)) if run_matches(query, titles[i], self._flat[i])]

    # ------------------------------------------------------------ drawing
    def _choice(self) -> CurveChoice:
        return CurveChoice(self.metric_box.currentData(), self.align_box.currentData() or GLOBAL,
                           self.smooth_slider.value())

    def redraw(self) -> None:
        """Every drawn run's curve again (another metric, alignment or smoothing), the list, legend and table."""
        metric = self.metric_box.currentData()
        self.hover_dot.setData([], [])
        self.readout.setText(" ")
        self.plot.setLogMode(y=metric == "p_value")
        self.plot.setLabel("left", METRIC_NAMES[metric])
        self.plot.setLabel("bottom", self.align_box.currentText() or "global step")
        self.plot.enableAutoRange()
        self._refresh()

    def _refresh(self) -> None:
        """Colours, the run list, the curves (see ``_update_curves``), legend and table."""
        self._update_color_choices()
        self.colors = self._run_colors()
        self._keep = set(self.shown())
        titles = run_titles(self.runs)
        self.list.blockSignals(True)
        try:
            for i, item in enumerate(self.list.item(k) for k in range(len(self.runs))):
                if item.text() != titles[i]:
                    item.setText(titles[i])
                if item.data(COLOR_ROLE) != self.colors[i]:
                    item.setData(COLOR_ROLE, self.colors[i])
                    item.setIcon(_swatch(self.colors[i]))
                item.setHidden(i not in self._keep)
        finally:
            self.list.blockSignals(False)
        self._update_curves()
        self.empty.setVisible(not self.runs)
        self.table.fill(self.runs, titles, self.differences, self._keep)

    def _update_curves(self) -> None:
        """Shows the checked runs the filter keeps, and hides the others. A shown curve whose run, metric,
        alignment or smoothing changed gets its points again; after ``CURVES_PER_TURN`` of them and
        ``TURN_BUDGET_S`` seconds the rest wait (hidden) for the next turn of the event loop, so that the
        UI never stalls on a hundred curves at once."""
        few = sum(1 for i in self._keep if self.list.item(i).checkState() == Qt.CheckState.Checked) <= MARKS_MAX_RUNS
        deadline = time.perf_counter() + TURN_BUDGET_S
        updated, waiting, drawn = 0, 0, 0
        choice, rc = self._choice(), self.run_curves
        for i, r in enumerate(self.runs):
            visible = i in self._keep and self.list.item(i).checkState() == Qt.CheckState.Checked
            curve = rc.items.get(r.log_path)
            if visible and not rc.up_to_date(r, choice):
                if updated >= CURVES_PER_TURN and time.perf_counter() > deadline:
                    visible, waiting = False, waiting + 1
                else:
                    curve = rc.curve(r, choice)
                    updated += 1
            if visible:
                rc.style(curve, self.colors[i], few)
            if curve is not None and curve.isVisible() != visible:
                curve.setVisible(visible)
            drawn += visible
        filtered = f", {len(self._keep)} match the filter" if self.filter_edit.text().strip() else ""
        more = f" ({waiting} more coming)" if waiting else ""
        self.count_label.setText(f"{len(self.runs)} runs{filtered}, {drawn} drawn{more}")
        self._update_legend()
        if waiting:
            self._more_timer.start()

    def _run_colors(self) -> list[str]:
        key = self.color_box.currentData() or BY_RUN
        if key == BY_RUN:
            return distinct_colors(len(self.runs))
        colors, self._color_key = setting_colors([f.get(key) for f in self._flat])
        return colors

    def _update_color_choices(self) -> None:
        current = self.color_box.currentData() or BY_RUN
        wanted = [BY_RUN, *self._differing]
        if [self.color_box.itemData(i) for i in range(self.color_box.count())] == wanted:
            return
        self.color_box.blockSignals(True)
        try:
            self.color_box.clear()
            self.color_box.addItem("one per run", BY_RUN)
            for k in self._differing:
                self.color_box.addItem(f"by {k}", k)
            self.color_box.setCurrentIndex(max(0, self.color_box.findData(current)))
        finally:
            self.color_box.blockSignals(False)

    def _update_alignments(self) -> None:
        current = self.align_box.currentData() or GLOBAL
        wanted = alignments([[s.name for s in r.stages] for r in self.runs])
        if [(self.align_box.itemData(i), self.align_box.itemText(i)) for i in range(self.align_box.count())] == wanted:
            return
        self.align_box.blockSignals(True)
        try:
            self.align_box.clear()
            for key, label in wanted:
                self.align_box.addItem(label, key)
            self.align_box.setCurrentIndex(max(0, self.align_box.findData(current)))
        finally:
            self.align_box.blockSignals(False)

    def _update_legend(self) -> None:
        key = self.color_box.currentData() or BY_RUN
        drawn = self.curves
        entries: list[tuple[pg.PlotDataItem, str]] = []
        if key != BY_RUN:
            self._key_items = [pg.PlotDataItem(pen=pg.mkPen(color, width=3))
                               for _text, color in self._color_key[:LEGEND_MAX_ENTRIES]]
            entries = [(sample, f"{key.rsplit('.', 1)[-1]} = {text}" if text != "not recorded" else text)
                       for sample, (text, _c) in zip(self._key_items, self._color_key, strict=False)]
            set_title(self.plot, f"colour: {key}")
        elif len(drawn) <= LEGEND_MAX_ENTRIES:
            entries = [(drawn[r.log_path], title) for r, title in zip(self.runs, run_titles(self.runs), strict=True)
                       if r.log_path in drawn]
            set_title(self.plot, "")
        else:
            set_title(self.plot, f"{len(drawn)} runs: the run list names each colour")
        self.key.set_entries(entries)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self.legend.items and event.size().width() != event.oldSize().width():
            self._legend_timer.start()  # the entries' room changed: shorten them again once resizing pauses

    # ------------------------------------------------------------ controls
    def _toggled(self, item: QListWidgetItem) -> None:
        """A run checked or unchecked: its curve is shown or hidden, the legend and count follow."""
        self._update_curves()

    def _check_all(self, checked: bool) -> None:
        keep = set(self.shown()) if checked else set(range(len(self.runs)))
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        self.list.blockSignals(True)
        try:
            for i in keep:
                self.list.item(i).setCheckState(state)
        finally:
            self.list.blockSignals(False)
        self._update_curves()

    def _smoothing_changed(self, position: int) -> None:
        self.smooth_label.setText(f"{position / SMOOTH_STEPS:.2f}")
        self.redraw()

    def set_smoothing(self, weight: float) -> None:
        """The smoothing weight (0 to 0.99), as the slider sets it."""
        self.smooth_slider.setValue(round(weight * SMOOTH_STEPS))

    def set_alignment(self, key: str) -> None:
        """Global step (``""``) or the steps since a stage began (``embed``, ``attack``, ``restore``)."""
        index = self.align_box.findData(key)
        if index < 0:
            raise ValueError(f"no run has a stage to align on for {key!r}")
        self.align_box.setCurrentIndex(index)

    def hover_at(self, scene_pos: QPointF) -> None:
        """Name the run, step, stage and value of the drawn point nearest a scene point (the mouse)."""
        best = nearest_drawn(self.plot.vb, self.runs, self.curves, scene_pos)
        if best is None:
            self.hover_dot.setData([], [])
            self.readout.setText(" ")
            return
        run, step, shown = best
        metric = self.metric_box.currentData()
        value = 10 ** shown if metric == "p_value" else shown  # the curve holds log10 p in log mode
        self.hover_dot.setData([step], [shown])
        key = self.align_box.currentData() or GLOBAL
        if key == GLOBAL:
            where = f"step {int(step)}   {stage_at(run.stages, step)}"
        else:
            stage = next((s.name for s in reversed(run.stages) if align_key(s.name) == key), key)
            where = f"step {int(step)} of {STAGE_LABELS.get(stage, stage)}"
        smooth = " (smoothed)" if self.smooth_slider.value() else ""
        self.readout.setText(f"{run_title(run, self.runs)}   {where}   {METRIC_NAMES[metric]} "
                             f"{metric_fmt(metric, value)}{smooth}")
