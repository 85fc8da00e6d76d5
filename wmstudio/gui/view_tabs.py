"""The tabs on the right: metrics, weight drift, loss landscape, compare runs, sweep, messages.

The plot views need pyqtgraph and the engine; they are made by ``build`` once the engine is
loaded (until then the first tab says so), so the window is on screen before torch is imported.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QTabWidget, QWidget

from wmstudio.gui.controller import landscape_kinds
from wmstudio.gui.log_reading import LogSnapshot, read_landscapes
from wmstudio.gui.series import RunSeries
from wmstudio.gui.turns import Turns
from wmstudio.gui.worker import in_background

TAB_NAMES = ("Metrics", "Weight drift", "Loss landscape", "Compare runs", "Sweep", "Messages")


class ViewTabs(QTabWidget):
    compute_requested = Signal(object)  # a LandscapeSpec
    stop_requested = Signal()
    open_run = Signal(str)  # a sweep cell's run log
    drawn = Signal()  # both plot views show the run given to show_run

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = mode
        self.metrics_view: Any = None
        self.drift_view: Any = None
        self.landscape_view: Any = None
        self.compare_view: Any = None
        self.sweep_view: Any = None
        self.log_path: Path | None = None
        self.messages = QPlainTextEdit()
        self.messages.setReadOnly(True)
        self.messages.setMaximumBlockCount(5000)
        self._waiting = QLabel("Loading the engine (PyTorch)…\nThe plots appear in a moment; the settings can be edited now.")
        self._waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.addTab(self._waiting, TAB_NAMES[0])
        self.addTab(self.messages, TAB_NAMES[-1])
        self._series = RunSeries()
        self._turns = Turns(self)  # show_run's drawing, one view per turn of the event loop

    @property
    def ready(self) -> bool:
        return self.metrics_view is not None

    def build(self) -> None:
        """Makes the plot views (the engine is loaded: the OpenGL probe may load its LLVM now)."""
        from wmstudio.gui.compare_view import CompareView
        from wmstudio.gui.drift_view import DriftView
        from wmstudio.gui.landscape_view import LandscapeView
        from wmstudio.gui.metrics_view import MetricsView
        from wmstudio.gui.sweep_view import SweepView
        from wmstudio.gui.theme import configure_plots

        configure_plots(self.mode)
        self.metrics_view, self.drift_view = MetricsView(self.mode), DriftView(self.mode)
        self.landscape_view, self.compare_view, self.sweep_view = LandscapeView(), CompareView(), SweepView()
        self.removeTab(0)
        self._waiting.deleteLater()
        views = (self.metrics_view, self.drift_view, self.landscape_view, self.compare_view, self.sweep_view)
        for i, (view, name) in enumerate(zip(views, TAB_NAMES, strict=False)):
            self.insertTab(i, view, name)
        self.setCurrentIndex(0)
        self.landscape_view.compute_requested.connect(self.compute_requested)
        self.landscape_view.stop_requested.connect(self.stop_requested)
        self.landscape_view.landscape_selected.connect(self.show_stored_landscape)
        self.sweep_view.open_run.connect(self.open_run)
        self.currentChanged.connect(lambda _i: self.redraw(self._series))

    # ------------------------------------------------------------ public API
    def show_tab(self, name: str) -> None:
        for i in range(self.count()):
            if self.tabText(i) == name:
                self.setCurrentIndex(i)

    def message(self, text: str) -> None:
        self.messages.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")
        bar = self.messages.verticalScrollBar()
        bar.setValue(bar.maximum())  # the newest entry in view

    def clear(self) -> None:
        """A new run: nothing of the previous log stays on screen."""
        self._turns.cancel()  # nor is drawn later
        if self.ready:
            self.metrics_view.clear()
            self.drift_view.clear()
            self.landscape_view.clear()

    def redraw(self, series: RunSeries) -> None:
        """The visible plot follows ``series`` (hidden ones catch up when they are shown)."""
        self._series = series
        current = self.currentWidget()
        if current is not None and current in (self.metrics_view, self.drift_view):
            current.show_series(series)

    def show_run(self, series: RunSeries) -> None:
        """A whole run: both plots, fitted to its steps. The visible one is drawn now, the other in a later
        turn of the event loop (``drawn`` is emitted then), so that the UI thread never draws both at once."""
        self._series = series
        if not self.ready:
            return
        views = [self.metrics_view, self.drift_view]
        if self.currentWidget() is self.drift_view:
            views.reverse()
        self._turns.run([lambda: views[0].show_log(series), lambda: views[1].show_log(series), self.drawn.emit])

    def show_log(self, snap: LogSnapshot, adopted: bool) -> None:
        """An opened log: in Compare always; in every view when it became the shown log."""
        if not self.ready:
            return
        self.compare_view.add_run(snap.series, snap.config)
        if not adopted:
            return
        if snap.path != self.log_path:
            self.landscape_view.clear()  # the previous log's surfaces are not this one's
        self.log_path = snap.path
        self.metrics_view.clear()
        self.drift_view.clear()
        self.show_run(snap.series)
        self.show_landscapes(snap.landscapes, snap.landscape)
        self.landscape_view.set_kind_reasons(landscape_kinds(snap.stages_with_weights))

    def show_landscapes(self, names: list[str], first: Any) -> None:
        current = self.landscape_view.current_name
        self.landscape_view.set_stored(names, current)
        if first is not None and current not in names:
            self.landscape_view.show_landscape(first)

    def refresh_landscapes(self, log: Path, wanted: str = "") -> None:
        """Re-reads the stored landscapes (on a worker) after one was computed."""
        self.log_path = log
        in_background(self, lambda: read_landscapes(log, wanted or self.landscape_view.current_name),
                      lambda r: self._landscapes_read(r, wanted))

    def _landscapes_read(self, result: tuple[list[str], Any], wanted: str) -> None:
        names, ls = result
        self.landscape_view.set_stored(names, ls.name if ls is not None else "")
        if ls is not None and (wanted or not self.landscape_view.current_name
                               or self.landscape_view.current_name == ls.name):
            self.landscape_view.show_landscape(ls)

    def landscape_computed(self, log: Path, ls: Any) -> None:
        """A landscape the app just computed, shown as its job returned it (``ls``: a stored Landscape, or
        None). Its log is not read back: the view already holds what the events said."""
        self.log_path = log
        if ls is None or not ls.name or ls.done.size == 0:  # failed, or cancelled before anything was stored
            return
        stored = self.landscape_view.controls.stored
        names = sorted({stored.itemText(i) for i in range(stored.count())} | {ls.name})  # as list_landscapes
        self.landscape_view.set_stored(names, ls.name)
        self.landscape_view.show_landscape(ls)

    def show_stored_landscape(self, name: str) -> None:
        if self.log_path is not None and name:
            self.refresh_landscapes(self.log_path, name)

    def set_busy(self, job: str, has_log: bool) -> None:
        if self.ready:
            self.landscape_view.set_busy(job, has_log, "" if has_log else "open or run an experiment first")

    def all_plots(self) -> dict[str, Any]:
        if not self.ready:
            return {}
        plots = {**self.metrics_view.plots, **self.drift_view.plots, **self.landscape_view.export_items()}
        if self.compare_view.runs:
            plots["compare"] = self.compare_view.plot
        return plots
