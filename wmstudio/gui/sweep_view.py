"""The persistence matrix of a sweep folder, live while the sweep runs; a click opens that run.

The folder is read on a worker thread (``in_background``), one read at a time, every ``REFRESH_MS``
while runs are still to go; the UI thread only draws what was read.

A heat map: one cell per combination of the two swept values, coloured on the scale shown beside
it (accuracies on 0 .. 1, other values on 0 .. their largest), with its value written in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wmstudio.errors import WmStudioError
from wmstudio.gui.worker import in_background
from wmstudio.metric_names import metric_label
from wmstudio.status import Status
from wmstudio.sweep.intervals import REPLICATE_AXES
from wmstudio.sweep.report import collect

METRICS = {k: metric_label(k) for k in ("restore.trigger_acc", "attacked.trigger_acc", "gain", "restore.test_acc",
                                        "attacked.drift_rel")}  # "attacked": whichever attack a run made
REFRESH_MS = 2000


class SweepView(QWidget):
    open_run = Signal(str)  # the run log to open
    refreshed = Signal(bool)  # a read of the folder ended: True when it was read and drawn

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self.rows: list[dict[str, Any]] = []
        self.axes: list[str] = []
        self.cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.reading = False  # a read of the folder is in flight (one at a time: a slow disk never piles them up)
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.open_button = QPushButton("Open sweep folder…")
        self.open_button.setToolTip("A folder written by `wmstudio sweep FILE --out DIR`; it refreshes while the sweep runs")
        self.metric_box = QComboBox()
        for k, v in METRICS.items():
            self.metric_box.addItem(v, k)
        self.metric_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.metric_box.setMinimumContentsLength(16)  # a long metric name never sets the window's minimum width
        self.status = QLabel("no sweep open")
        # a long sweep name never widens the window (it did, for good, as the saved geometry kept it)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.empty_text = ("No sweep open: press “Open sweep folder…” and choose a folder written by "
                           "`wmstudio sweep FILE --out DIR` (it refreshes while the sweep runs).")
        bar.addWidget(self.open_button)
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.metric_box)
        bar.addWidget(self.status, 1)
        layout.addLayout(bar)
        self.table = QTableWidget()
        self.table.setToolTip("Each cell: the mean over the runs with those values; click to open the run")
        # a cell's colour is its value: a selection highlight would paint over it, and cells are not editable
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no current-cell tint either
        self.cmap = pg.colormap.get("viridis")
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self.cmap, interactive=False, label=" ")
        self.colorbar_widget = pg.GraphicsLayoutWidget()
        self.colorbar_widget.addItem(self.colorbar)
        self.colorbar_widget.setFixedWidth(130)
        self.colorbar_widget.setVisible(False)
        matrix = QHBoxLayout()
        matrix.addWidget(self.table, 1)
        matrix.addWidget(self.colorbar_widget)
        layout.addLayout(matrix, 1)
        self.hint = QLabel(self.empty_text)
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.open_button.clicked.connect(self._choose)
        self.metric_box.currentIndexChanged.connect(lambda _i: self.draw())
        self.table.cellClicked.connect(self._clicked)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open sweep folder")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        """Show the sweep in ``folder``: read on a worker, then drawn (``refreshed`` says how it went) and read
        again every ``REFRESH_MS`` while runs are to go. True: the read is under way (after the one in flight)."""
        self.folder = Path(folder)
        self.timer.stop()
        self.refresh()
        return True

    def refresh(self) -> None:
        """Read the folder again on a worker (skipped while a read is in flight)."""
        if self.folder is None or self.reading:
            return
        folder = self.folder
        self.reading = True

        def read() -> Any:
            try:
                return collect(folder)
            except (WmStudioError, OSError) as exc:
                return exc

        in_background(self, read, lambda result: self._show(folder, result),
                      lambda message, _d, _u: self._show(folder, OSError(message)), "sweep")

    def _show(self, folder: Path, result: Any) -> None:
        """Draw what a read of ``folder`` found (its records, or the error that stopped it)."""
        self.reading = False
        if folder != self.folder:  # another folder was opened meanwhile
            self.refresh()
            return
        if isinstance(result, Exception):
            self.status.setText(str(result))
            self.timer.stop()
            self.refreshed.emit(False)
            return
        meta, self.axes, self.rows = result
        counts = {s: sum(r["status"] == s for r in self.rows)
                  for s in (Status.FINISHED, Status.FAILED, Status.QUEUED, Status.RUNNING, Status.PENDING)}
        to_go = counts[Status.QUEUED] + counts[Status.RUNNING] + counts[Status.PENDING]
        self.status.setText(f"{meta.get('name', '')}: {len(self.rows)} runs, {counts[Status.FINISHED]} finished, "
                            f"{counts[Status.FAILED]} failed, {to_go} to go")
        self.status.setToolTip(self.status.text())
        if to_go == 0:
            self.timer.stop()
        elif not self.timer.isActive():
            self.timer.start()
        self.draw()
        self.refreshed.emit(True)

    def matrix_axes(self) -> tuple[str, str]:
        axes = [a for a in self.axes if a not in REPLICATE_AXES] or self.axes  # seeds replicate cells
        swept = [a for a in axes if len({r[a] for r in self.rows}) > 1] or axes[:1]
        return swept[0], (swept[1] if len(swept) > 1 else "")

    def scale(self, key: str) -> tuple[float, float]:
        """The colour scale's range for a metric: 0 .. 1 for accuracies, 0 .. the largest value otherwise."""
        if key.endswith("acc"):
            return 0.0, 1.0
        return 0.0, max([1e-12] + [float(r[key]) for r in self.rows if r[key] is not None])

    def draw(self) -> None:
        if not self.rows:
            return
        self.hint.setText("Each cell: the mean over the runs with those values (collapsed models left out), coloured "
                          "on the scale at the right; click a cell to open its run's plots.")
        key = self.metric_box.currentData()
        lo, hi = self.scale(key)
        self.colorbar.setLevels((lo, hi))
        self.colorbar.axis.setLabel(METRICS[key])
        self.colorbar_widget.setVisible(True)
        row_axis, col_axis = self.matrix_axes()
        rv = sorted({r[row_axis] for r in self.rows}, key=str)
        cv = sorted({r[col_axis] for r in self.rows}, key=str) if col_axis else [""]
        self.table.setRowCount(len(rv))
        self.table.setColumnCount(len(cv))
        # short names (lr) unless both axes share one (finetune.lr and restore.lr): then the full ones
        short = row_axis.split(".")[-1] != col_axis.split(".")[-1]
        row_name, col_name = (a.split(".")[-1] if short else a for a in (row_axis, col_axis))
        self.table.setVerticalHeaderLabels([f"{row_name}={v}" for v in rv])
        self.table.setHorizontalHeaderLabels([f"{col_name}={v}" if col_axis else "" for v in cv])
        self.cells = {}
        for i, a in enumerate(rv):
            for j, b in enumerate(cv):
                runs = [r for r in self.rows if r[row_axis] == a and (not col_axis or r[col_axis] == b)]
                self.cells[(i, j)] = runs
                vals = [r[key] for r in runs if r["status"] == Status.FINISHED and r[key] is not None
                        and not r.get("excluded")]
                failed = sum(r["status"] == Status.FAILED for r in runs)
                collapsed = sum(bool(r.get("excluded")) for r in runs)
                item = QTableWidgetItem()
                notes = ([f"{failed} failed"] if failed else []) + ([f"{collapsed} collapsed, left out"] if collapsed else [])
                if vals:
                    v = float(np.mean(vals))
                    item.setText(f"{v:.3f}" + (f"  ({', '.join(notes)})" if notes else ""))
                    frac = float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))
                    color = self.cmap.map(float(frac), mode="qcolor")
                    item.setBackground(QBrush(color))
                    item.setForeground(QBrush(QColor("black" if frac > 0.6 else "white")))
                elif collapsed and collapsed + failed == len(runs):
                    item.setText("collapsed (no watermark reading)")
                else:
                    item.setText("failed" if failed == len(runs) else "…")
                item.setToolTip("\n".join(f"{r['run_id']}: {r['status']} {r['error']}"
                                           + (f" COLLAPSED: {r['flag']}" if r.get("excluded") else "") for r in runs))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def _clicked(self, i: int, j: int) -> None:
        if self.folder is None:
            return
        runs = self.cells.get((i, j), [])
        for r in runs:
            log = self.folder / "runs" / f"{r['run_id']}.h5"
            if log.is_file():
                self.open_run.emit(str(log))
                return
        if runs:  # records without their logs (a copied report, or logs removed to save space)
            self.hint.setText(f"No run log of this cell is in {self.folder / 'runs'} (only its records: "
                              f"{', '.join(r['run_id'] for r in runs)}), so there are no plots to open.")
