"""Shared set-up for the GUI tests: a main window with private settings and runs folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings

QUICK = {"embed.epochs": 6, "finetune.epochs": 2, "restore.epochs": 2, "run.threads": 2}


def make_window(qtbot, tmp_path: Path, quick: bool = True):  # noqa: ANN001, ANN201
    from wmstudio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(tmp_path / "runs", settings)
    qtbot.addWidget(win)
    if quick:
        for k, v in QUICK.items():
            win.form.set_value(k, v)
    win.form._edited()
    return win


def curve_data(curve) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    x, y = curve.getOriginalDataset()  # all the data the item holds (what it shows is clipped to the view)
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))
