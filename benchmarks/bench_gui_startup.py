"""App start-up: launch to first paint, and launch to first run possible (median of cold starts).

Each start is a new Python process running the app's own ``main()`` (the window, the theme, the
settings) with its event loop; the process reports when the window first painted and when Run
became possible (the engine loaded), both measured from just before the process was spawned.
``--baseline DIR`` times another checkout (e.g. /work/main, before the background engine) the same
way, interleaved with this one, so the two are compared on the same machine load:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui_startup.py [--runs 5] [--baseline DIR]

"bare Qt window" is the floor: an empty PySide6 window with one button, started the same way.
Target: first paint < 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

T0 = float(sys.argv[1])
marks = {}

class Watch(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and "paint" not in marks:
            marks["paint"] = time.time() - T0
        return False

def runnable(win):
    button = getattr(getattr(win, "run_panel", None), "run_button", None) or getattr(win, "run_button", None)
    return button is not None and button.isEnabled()

def run(self):
    win = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow))
    watch = Watch()
    for w in [win, *win.findChildren(QObject)]:
        if hasattr(w, "installEventFilter") and hasattr(w, "isWidgetType") and w.isWidgetType():
            w.installEventFilter(watch)
    def poll():
        if "paint" in marks and runnable(win):
            marks["run"] = time.time() - T0
            print(json.dumps(marks), flush=True)
            QApplication.quit()
    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(5)
    QTimer.singleShot(120_000, QApplication.quit)
    return ORIGINAL()

ORIGINAL = QApplication.exec
QApplication.exec = run
if sys.argv[3] == "floor":  # the least any PySide6 app pays: an empty window with one button
    from PySide6.QtWidgets import QPushButton
    app = QApplication([])
    floor = QMainWindow()
    floor.run_button = QPushButton("Run")
    floor.setCentralWidget(floor.run_button)
    floor.show()
    app.exec()
else:
    from wmstudio.gui.app import main
    main(["--runs-dir", sys.argv[2]])
"""


def start_once(root: Path | None, tmp: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root or ""), "XDG_CONFIG_HOME": str(tmp / "config"),
           "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    tmp.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, repr(t0), str(tmp / "runs"), "floor" if root is None else "app"], capture_output=True, text=True,
                         env=env, cwd=str(tmp), timeout=300)
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"{root}: no timing came back\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", help="another checkout to time the same way (its wmstudio)")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    roots: dict[str, Path | None] = {"this checkout": here, "bare Qt window": None}
    if args.baseline:
        roots["baseline"] = Path(args.baseline).resolve()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in roots}
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            for name, root in roots.items():  # interleaved: both see the same machine load
                results[name].append(start_once(root, Path(d) / f"{name}-{i}".replace(" ", "_")))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"app start-up, median of {args.runs} cold starts (new process each; load average {load:.1f}, "
          f"{os.cpu_count()} CPUs)")
    print(f"{'':<16}{'first paint s':>15}{'first run possible s':>22}")
    med = {}
    for name, rows in results.items():
        med[name] = (statistics.median(r["paint"] for r in rows), statistics.median(r["run"] for r in rows))
        each = ", ".join(f"{r['paint']:.2f}" for r in rows)
        print(f"{name:<16}{med[name][0]:>15.2f}{med[name][1]:>22.2f}   (each first paint: {each})")
    if "baseline" in med:
        a, b = med["this checkout"], med["baseline"]
        print(f"ratio this/baseline: first paint {a[0] / b[0]:.2f}x, first run possible {a[1] / b[1]:.2f}x")
    print(f"target: first paint < 1.5 s -> {'met' if med['this checkout'][0] < 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
