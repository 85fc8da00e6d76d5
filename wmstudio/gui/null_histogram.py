"""The null distribution of a verification: a histogram of the trigger accuracies of models trained without
the watermark, with the suspect model's trigger accuracy and the decision threshold marked on it.

A self-contained widget: ``NullHistogram().show(null_accs, suspect_acc, threshold)``; the verify panel
feeds it ``Verification.null_accs``, ``Verification.trigger_acc`` and ``Verification.threshold_acc``
(``wmstudio.verify``), or ``NullDistribution.load(path).trigger_acc`` for a stored file alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

SUSPECT_COLOR = "#d9534f"
THRESHOLD_COLOR = "#f0ad4e"
BAR_COLOR = "#4fc3f7"


class NullHistogram(QWidget):
    """Histogram of null trigger accuracies over [0, 1], the suspect's accuracy as a red line and the
    threshold (the accuracy the decision at the chosen false-positive rate needs) as a dashed one."""

    def __init__(self, parent: QWidget | None = None, bins: int = 20) -> None:
        super().__init__(parent)
        self.bins = bins
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "trigger accuracy")
        self.plot.setLabel("left", "null models")
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.addLegend(offset=(-10, 10))
        layout.addWidget(self.plot)
        self.caption = QLabel("no null distribution")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self.counts = np.zeros(0, dtype=int)
        self.edges = np.zeros(0)
        self.bars: pg.BarGraphItem | None = None
        self.suspect_line: pg.InfiniteLine | None = None
        self.threshold_line: pg.InfiniteLine | None = None

    def clear(self) -> None:
        self.plot.clear()
        self.counts, self.edges = np.zeros(0, dtype=int), np.zeros(0)
        self.bars = self.suspect_line = self.threshold_line = None
        self.caption.setText("no null distribution")

    def show(self, null_accs: Sequence[float], suspect_acc: float | None = None,  # type: ignore[override]
             threshold: float | None = None) -> None:
        """Draw the distribution; ``suspect_acc`` / ``threshold`` (trigger accuracies in [0, 1]) when known.

        (Named ``show`` as the verify panel's API; the widget itself is shown with ``setVisible``.)"""
        self.clear()
        accs = np.asarray([a for a in null_accs if np.isfinite(a)], dtype=float)
        self.edges = np.linspace(0.0, 1.0, self.bins + 1)
        self.counts, _ = np.histogram(np.clip(accs, 0, 1), bins=self.edges)
        width = self.edges[1] - self.edges[0]
        self.bars = pg.BarGraphItem(x0=self.edges[:-1], width=width * 0.95, height=self.counts,
                                    brush=BAR_COLOR, name=f"{len(accs)} null models")
        self.plot.addItem(self.bars)
        if threshold is not None:
            self.threshold_line = pg.InfiniteLine(threshold, angle=90, label="threshold",
                                                  pen=pg.mkPen(THRESHOLD_COLOR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                                  labelOpts={"position": 0.85, "color": THRESHOLD_COLOR})
            self.plot.addItem(self.threshold_line)
        if suspect_acc is not None:
            self.suspect_line = pg.InfiniteLine(suspect_acc, angle=90, label="suspect",
                                                pen=pg.mkPen(SUSPECT_COLOR, width=2),
                                                labelOpts={"position": 0.95, "color": SUSPECT_COLOR})
            self.plot.addItem(self.suspect_line)
        self.plot.setXRange(0, 1, padding=0.02)
        top = max(1, int(self.counts.max()) if len(self.counts) else 1)
        self.plot.setYRange(0, top * 1.15, padding=0)
        step = max(1, int(np.ceil(top / 5)))  # counts are whole models: whole-number ticks (0.5 had been shown)
        self.plot.getAxis("left").setTickSpacing(major=step, minor=step)
        text = f"{len(accs)} null models: mean {accs.mean():.3f}, max {accs.max():.3f}" if len(accs) else "no null models"
        if suspect_acc is not None:
            text += f"; suspect {suspect_acc:.3f} (beaten or tied by {int((accs >= suspect_acc).sum())})"
        text += f"; threshold {threshold:.3f}" if threshold is not None else "; no threshold reachable" \
            if suspect_acc is not None else ""
        self.caption.setText(text)
