"""What the app remembers between sessions: window geometry, splitter, runs folder, recent logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMainWindow, QMenu, QSplitter

MAX_RECENT = 8


class WindowState:
    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def restore(self, win: QMainWindow, splitter: QSplitter) -> None:
        geo, state, split = (self.settings.value(k) for k in ("geometry", "window_state", "splitter"))
        if geo is not None:
            win.restoreGeometry(geo)
        else:  # 1440 x 900, or the screen less room for the desktop's panels (usable at 1280 x 720)
            room = win.screen().availableGeometry()
            win.resize(min(1440, room.width() - 40), min(900, room.height() - 60))
        if state is not None:
            win.restoreState(state)
        if split is None or not splitter.restoreState(split):
            splitter.setSizes([400, 1040])

    def save(self, win: QMainWindow, splitter: QSplitter, runs_dir: Path) -> None:
        self.settings.setValue("geometry", win.saveGeometry())
        self.settings.setValue("window_state", win.saveState())
        self.settings.setValue("splitter", splitter.saveState())
        self.set_runs_dir(runs_dir)

    def set_runs_dir(self, runs_dir: Path) -> None:
        self.settings.setValue("runs_dir", str(runs_dir))
        self.settings.sync()  # kept even if the app never exits cleanly

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def add_recent(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue("recent_files", items[:MAX_RECENT])

    def fill_menu(self, menu: QMenu, open_log: Callable[[str], object]) -> None:
        menu.clear()
        for p in self.recent_files():
            menu.addAction(p).triggered.connect(lambda _=False, path=p: open_log(path))
        menu.setEnabled(bool(self.recent_files()))
