"""Screenshots of the real app for the README, taken under Xvfb with a window manager:

    Xvfb :77 -screen 0 1600x1000x24 &  DISPLAY=:77 openbox &
    DISPLAY=:77 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshots.py [--out docs/images]

(or ``xvfb-run -a -s "-screen 0 1600x1000x24" ...`` without the window manager). Runs the
built-in demo in the app and grabs the metrics mid-run with the mouse over the accuracy plot
(crosshair and read-out), the weight drift with the mouse over the heat map, then computes the
published landscape (PCA of the attack and restoration) and grabs the 2D map (labelled axes,
contours, models, trajectories) and the 3D surface (axes, colour bar). Shots are read back from
the screen, so the 3D view's labels (drawn over the OpenGL scene) are in them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--theme", default="light")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtCore import QPointF, QSettings
    from PySide6.QtGui import QCursor
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui import theme
    from wmstudio.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(tmp / "runs", settings, theme.apply(app, args.theme))
    win.resize(1560, 940)
    win.show()

    def pump(seconds: float, until=None) -> None:  # noqa: ANN001
        end = time.time() + seconds
        while time.time() < end and not (until and until()):
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str) -> None:
        pump(0.4)
        g = win.geometry()
        app.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height()).save(str(out / name))
        print(out / name)

    def hover(plot, x: float, y: float, readout) -> None:  # noqa: ANN001 - a pyqtgraph plot, a QLabel
        """Move the real mouse pointer to the data point (x, y) of a plot and wait for its read-out."""
        view = plot.scene().views()[0]
        local = view.mapFromScene(plot.vb.mapViewToScene(QPointF(x, y)))
        QCursor.setPos(view.viewport().mapToGlobal(local))
        pump(3, lambda: readout.text().strip() != "")

    pump(0.5)
    win.setup.preview_triggers()
    pump(20, lambda: win.setup.trigger_grid.count > 0)
    win.setup.form.set_value("embed.epochs", 30)  # a longer embed, so the shot catches the run mid-way
    win.setup.form.set_value("finetune.epochs", 10)
    win.setup.form.set_value("restore.epochs", 12)
    win.start_run()
    pump(300, lambda: any(s.name == "finetune" for s in win.ctl.series.stages) and len(win.ctl.series.eval_rows) > 36)
    mv = win.tabs.metrics_view
    finetune = next(s for s in win.ctl.series.stages if s.name == "finetune")
    hover(mv.acc, finetune.start_step + 0.6 * (win.ctl.series.last_step - finetune.start_step), 0.5, mv.readout)
    shot("main_window_running.png")
    QCursor.setPos(0, 0)
    pump(600, lambda: not win.busy)
    win.tabs.setCurrentWidget(win.tabs.drift_view)
    pump(0.5)
    dv = win.tabs.drift_view
    hover(dv.heat, finetune.start_step + 20, 1.5, dv.readout)
    shot("weight_drift.png")
    QCursor.setPos(0, 0)
    lv = win.tabs.landscape_view
    lv.resolution.setValue(41)
    win.tabs.setCurrentWidget(lv)
    lv.published_button.click()
    pump(600, lambda: not win.busy)
    lv.tabs.setCurrentIndex(0)
    pump(0.5)
    shot("landscape_2d.png")
    lv.tabs.setCurrentIndex(1)
    pump(2.0)
    shot("landscape_3d.png")
    win.close()
    return 0  # (the caller exits at once: see below)


if __name__ == "__main__":
    import os

    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip interpreter finalisation, where PySide6 + OpenGL teardown can crash
