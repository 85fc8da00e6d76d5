"""The persistence matrix of a sweep folder, live while the sweep runs; a click opens that run."""

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
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wmstudio.errors import WmStudioError
from wmstudio.metric_names import metric_label
from wmstudio.sweep.report import collect

METRICS = {k: metric_label(k) for k in ("restore.trigger_acc", "finetune.trigger_acc", "restore.test_acc",
                                        "finetune.drift_rel")}


class SweepView(QWidget):
    open_run = Signal(str)  # the run log to open

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self.rows: list[dict[str, Any]] = []
        self.axes: list[str] = []
        self.cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.open_button = QPushButton("Open sweep folder…")
        self.open_button.setToolTip("A folder written by `wmstudio sweep FILE --out DIR`; it refreshes while the sweep runs")
        self.metric = QComboBox()
        for k, v in METRICS.items():
            self.metric.addItem(v, k)
        self.status = QLabel("no sweep open")
        bar.addWidget(self.open_button)
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.metric)
        bar.addWidget(self.status, 1)
        layout.addLayout(bar)
        self.table = QTableWidget()
        self.table.setToolTip("Each cell: the mean over the runs with those values; click to open the run")
        # a cell's colour is its value: a selection highlight would paint over it, and cells are not editable
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no current-cell tint either
        layout.addWidget(self.table, 1)
        self.hint = QLabel("Click a cell to open its run's plots.")
        layout.addWidget(self.hint)
        self.cmap = pg.colormap.get("viridis")
        self.timer = QTimer(self)
        self.timer.setInterval(2000)
        self.timer.timeout.connect(self.refresh)
        self.open_button.clicked.connect(self._choose)
        self.metric.currentIndexChanged.connect(lambda _i: self.draw())
        self.table.cellClicked.connect(self._clicked)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open sweep folder")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        self.folder = Path(folder)
        ok = self.refresh()
        if ok:
            self.timer.start()
        return ok

    def refresh(self) -> bool:
        if self.folder is None:
            return False
        try:
            meta, self.axes, self.rows = collect(self.folder)
        except (WmStudioError, OSError) as exc:
            self.status.setText(str(exc))
            self.timer.stop()
            return False
        counts = {s: sum(r["status"] == s for r in self.rows) for s in ("finished", "failed", "queued", "pending")}
        self.status.setText(f"{meta.get('name', '')}: {len(self.rows)} runs, {counts['finished']} finished, "
                            f"{counts['failed']} failed, {counts['queued'] + counts['pending']} to go")
        if counts["queued"] + counts["pending"] == 0:
            self.timer.stop()
        self.draw()
        return True

    def matrix_axes(self) -> tuple[str, str]:
        swept = [a for a in self.axes if len({r[a] for r in self.rows}) > 1] or self.axes[:1]
        return swept[0], (swept[1] if len(swept) > 1 else "")

    def draw(self) -> None:
        if not self.rows:
            return
        key = self.metric.currentData()
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
                vals = [r[key] for r in runs if r["status"] == "finished" and r[key] is not None]
                failed = sum(r["status"] == "failed" for r in runs)
                item = QTableWidgetItem()
                if vals:
                    v = float(np.mean(vals))
                    item.setText(f"{v:.3f}" + (f"  ({failed} failed)" if failed else ""))
                    frac = v if key.endswith("acc") else min(1.0, v / max(1e-12, max(
                        (r[key] or 0) for r in self.rows if r[key] is not None)))
                    color = self.cmap.map(float(frac), mode="qcolor")
                    item.setBackground(QBrush(color))
                    item.setForeground(QBrush(QColor("black" if frac > 0.6 else "white")))
                else:
                    item.setText("failed" if failed == len(runs) else "…")
                item.setToolTip("\n".join(f"{r['run_id']}: {r['status']} {r['error']}" for r in runs))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def _clicked(self, i: int, j: int) -> None:
        if self.folder is None:
            return
        for r in self.cells.get((i, j), []):
            log = self.folder / "runs" / f"{r['run_id']}.h5"
            if log.is_file():
                self.open_run.emit(str(log))
                return
