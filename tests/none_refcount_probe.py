"""Measures what Qt calls and pyqtgraph redraws do to ``sys.getrefcount(None)``; prints JSON.

Run in a child process by tests/test_gui_long_session.py, so that a binding which drops references
to None (PySide6 6.12.0) fails the test with a message instead of aborting the test session when
the count reaches zero. Each figure is the change of None's count per call; 0 is right, a rise is
a harmless extra reference, a fall ends in ``Fatal Python error: none_dealloc``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6 import __version__ as pyside_version  # noqa: E402
from PySide6.QtCore import QObject, Qt  # noqa: E402
from PySide6.QtGui import QColor, QPen  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def per_call(fn: Callable[[], object], n: int) -> float:
    for _ in range(20):
        fn()
    before = sys.getrefcount(None)
    for _ in range(n):
        fn()
    return (sys.getrefcount(None) - before) / n


def main() -> None:
    app = QApplication.instance() or QApplication([])
    obj, pen = QObject(), QPen(QColor(10, 20, 30))
    plot = pg.PlotWidget()
    item = plot.plot(pen=pg.mkPen("#2f7ed8", width=2), symbol="o", symbolSize=4,
                     symbolPen=pg.mkPen("#2f7ed8"), symbolBrush=pg.mkBrush("#2f7ed8"))
    x = np.arange(200, dtype=float)
    y = np.sin(x / 10)
    out = {
        "pyside": pyside_version,
        # void Qt calls, 3000 each: a leaking binding loses 3000 references per line
        "QObject.setObjectName": per_call(lambda: obj.setObjectName("x"), 3000),
        "QPen.setStyle": per_call(lambda: pen.setStyle(Qt.PenStyle.DashLine), 3000),
        "QPen.setCosmetic": per_call(lambda: pen.setCosmetic(True), 3000),
        # a live-plot redraw as the app makes it (a dozen void Qt calls inside each)
        "PlotDataItem.setData": per_call(lambda: item.setData(x, y), 300),
    }
    app.processEvents()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
