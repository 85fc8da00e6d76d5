"""Compare's table of runs: one row per run with what differs between the runs and its final values.

A run's final values are recomputed only when it changed (its series' revision); when only the filter
changed, rows are shown or hidden and nothing is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtWidgets import QTableWidget, QTableWidgetItem, QWidget

from wmstudio.gui.series import RunSeries

HEADERS = ["run", "settings that differ", "stages", "test acc", "trigger after embed", "after fine-tune",
           "after restore", "final drift (rel)"]


def _fmt(v: float) -> str:
    return "" if math.isnan(v) else f"{v:.3f}"


def finals(r: RunSeries) -> list[str]:
    """A run's cells after its name and settings: its stages and final values."""
    return [" → ".join(s.name for s in r.stages), _fmt(r.final("test_acc")), _fmt(r.final("trigger_acc", "embed")),
            _fmt(r.final("trigger_acc", "finetune")), _fmt(r.final("trigger_acc", "restore")), _fmt(r.final("drift_rel"))]


class RunTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        self.horizontalHeader().setStretchLastSection(True)
        self._finals: dict[str, tuple[tuple[int, int], list[str]]] = {}  # each run's cells after its settings
        self._filled = -1  # how many runs the rows were filled for (-1: fill again)

    def runs_changed(self) -> None:
        """Every row is filled again on the next ``fill`` (a name or what differs may have changed)."""
        self._filled = -1

    def fill(self, runs: list[RunSeries], titles: list[str], differences: Callable[[int], str], keep: set[int]) -> None:
        """One row per run (``differences(i)``: what run i's settings are where the runs differ); rows not in
        ``keep`` hidden."""
        if self._filled == len(runs):  # only the filter changed
            for i in range(len(runs)):
                self.setRowHidden(i, i not in keep)
            return
        self._filled = len(runs)
        changed = self.rowCount() != len(runs)
        self.setUpdatesEnabled(False)
        try:
            self.setRowCount(len(runs))
            for i, r in enumerate(runs):
                cached = self._finals.get(r.log_path)
                if cached is None or cached[0] != (id(r), r.revision):
                    self._finals[r.log_path] = cached = ((id(r), r.revision), finals(r))
                for j, v in enumerate([titles[i], differences(i), *cached[1]]):
                    cell = self.item(i, j)
                    if cell is None:
                        self.setItem(i, j, QTableWidgetItem(v))
                        changed = True
                    elif cell.text() != v:
                        cell.setText(v)
                        changed = True
                self.setRowHidden(i, i not in keep)
            if changed:
                self.resizeColumnsToContents()
        finally:
            self.setUpdatesEnabled(True)
