"""The app's main window for the GUI benchmarks, with a 5 ms timer that records the UI thread's ticks.

Shared by bench_gui_responsiveness.py and bench_gui_logs.py (run as scripts: this folder is on
their import path). A stall is how much longer than 5 ms the gap between two ticks was.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TICK_MS = 5


def stalls_ms(ticks: list[float]) -> Any:
    """How much longer than the timer's interval each gap between two ticks was, in ms (zeros: no stall)."""
    import numpy as np

    if len(ticks) < 2:
        return np.zeros(1)
    return np.maximum(np.diff(np.asarray(ticks)) * 1000 - TICK_MS, 0.0)


def open_window(width: int = 1500, height: int = 900) -> tuple[Any, Any, list[float], Any]:
    """(QApplication, MainWindow shown in a temp runs folder, tick times, the tick QTimer, not started)."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    win = MainWindow(tmp / "runs", QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(width, height)
    win.show()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    return app, win, ticks, timer
