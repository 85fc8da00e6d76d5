"""Screenshots of the real app for the README, taken under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py [--out docs/images]

Runs the built-in demo in the app, grabs the main window mid-run, then computes the plane
landscape and grabs the 2D map and the 3D surface.
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
    from PySide6.QtCore import QSettings
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

    pump(0.5)
    win.setup.preview_triggers()
    pump(20, lambda: win.setup.trigger_grid.count > 0)
    win.setup.form.set_value("embed.epochs", 30)  # a longer embed, so the shot catches the run mid-way
    win.setup.form.set_value("finetune.epochs", 10)
    win.setup.form.set_value("restore.epochs", 12)
    win.start_run()
    pump(120, lambda: any(s.name == "finetune" for s in win.ctl.series.stages) and len(win.ctl.series.eval_rows) > 36)
    pump(0.3)
    win.grab().save(str(out / "main_window_running.png"))
    print(out / "main_window_running.png")
    pump(300, lambda: not win.busy)
    win.tabs.setCurrentWidget(win.tabs.drift_view)
    pump(0.5)
    win.grab().save(str(out / "weight_drift.png"))
    lv = win.tabs.landscape_view
    lv.kind.setCurrentText("plane")
    lv.resolution.setValue(41)
    win.tabs.setCurrentWidget(lv)
    lv.compute_button.click()
    pump(300, lambda: not win.busy)
    lv.tabs.setCurrentIndex(0)
    pump(0.5)
    win.grab().save(str(out / "landscape_2d.png"))
    print(out / "landscape_2d.png")
    lv.tabs.setCurrentIndex(1)
    pump(1.5)
    win.grab().save(str(out / "landscape_3d.png"))
    print(out / "landscape_3d.png")
    win.close()
    return 0  # (the caller exits at once: see below)


if __name__ == "__main__":
    import os

    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip interpreter finalisation, where PySide6 + OpenGL teardown can crash
