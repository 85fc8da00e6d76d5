"""UI-thread responsiveness of the app while a stage trains, next to the same window idle.

A 5 ms QTimer on the UI thread records the gap between its ticks; a stall is how much longer than
5 ms a gap was. Also counts how often the live plots were redrawn. Run (offscreen, or under Xvfb):
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui_responsiveness.py [--seconds 12]
Target (2-core CPU): 99th-percentile stall < 50 ms while training; plots redrawn at >= 10 Hz.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12.0)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from gui_bench_window import open_window, stalls_ms

    app, win, ticks, timer = open_window()
    redraws: list[float] = []
    original = win.tabs.metrics_view.show_series

    def counting(series):  # noqa: ANN001, ANN202
        before = win.tabs.metrics_view.revision
        original(series)
        if win.tabs.metrics_view.revision != before:
            redraws.append(time.perf_counter())

    win.tabs.metrics_view.show_series = counting

    def measure(seconds: float) -> np.ndarray:
        ticks.clear()
        end = time.perf_counter() + seconds
        timer.start()
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        return stalls_ms(ticks)

    idle = measure(2.0)
    win.setup.form.set_value("embed.epochs", 400)  # longer than the measurement: it trains throughout
    win.setup.form.set_value("run.threads", 2)
    win.setup.form.revalidate()
    win.start_run()
    while not win.ctl.series.train_steps:
        app.processEvents()
        time.sleep(0.005)
    t0 = time.perf_counter()
    busy = measure(args.seconds)
    t1 = time.perf_counter()
    steps = win.ctl.series.last_step
    rate = len([r for r in redraws if t0 <= r <= t1]) / (t1 - t0)
    win.control.cancel()
    while win.busy:
        app.processEvents()
        time.sleep(0.01)
    print(f"UI-thread stalls beyond a 5 ms timer ({len(busy)} ticks while training, {len(idle)} idle)")
    print(f"{'':<18}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    for name, s in (("idle window", idle), ("while training", busy)):
        print(f"{name:<18}{np.percentile(s, 50):>8.1f}{np.percentile(s, 99):>8.1f}{s.max():>8.1f}")
    print(f"p99 while training / idle: {np.percentile(busy, 99) / max(np.percentile(idle, 99), 0.1):.1f}x "
          f"(target p99 < 50 ms)")
    print(f"live plot redraws: {rate:.1f} per second (target >= 10); {steps} training steps ran meanwhile")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
