"""Cost of one live redraw of the Metrics and Weight drift views, next to another checkout's views.

A synthetic run grows by one evaluation per redraw, as during training; each view redraws it
(``show_series``) and the widget repaints. Run offscreen:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_plot_redraw.py [--baseline ../main] [--evals 600]

With ``--baseline`` the same redraws run, interleaved, on the views of that checkout's
``wmstudio/gui/metrics_view.py`` (and ``drift_view.py`` where it has one) and the medians are printed side by side with their ratio (the
figure to read on a shared machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np


def synthetic(evals: int, layers: int, steps_per_eval: int):  # noqa: ANN201 - a list of engine events
    from wmstudio.events import Metrics, StageStarted, Step

    rng = np.random.default_rng(0)
    names = tuple(f"block{i}.conv" for i in range(layers))
    events, step = [], 0
    per_stage = evals // 3
    for k, stage in enumerate(("embed", "finetune", "restore")):
        events.append([StageStarted(stage=stage, global_step=step, epochs=per_stage, steps_per_epoch=steps_per_eval,
                                    layer_names=names)])
        for _ in range(per_stage):
            batch = []
            for _ in range(steps_per_eval):
                step += 1
                batch.append(Step(stage=stage, epoch=1, step=step, total_steps=evals * steps_per_eval,
                                  global_step=step, loss=float(rng.uniform(0.1, 2)), lr=0.01))
            acc = float(rng.uniform(0, 1))
            batch.append(Metrics(stage=stage, epoch=1.0, global_step=step,
                                 values={"test_acc": acc, "trigger_acc": acc, "test_loss": 1 - acc,
                                         "trigger_loss": 1 - acc, "drift_l2": float(step), "drift_rel": 0.1,
                                         "drift_cos": 0.9, "p_value": 10.0 ** -float(rng.uniform(0, 60))},
                                 layer_l2=tuple(rng.uniform(0, k + 1, layers)),
                                 layer_cos=tuple(rng.uniform(0, 1, layers))))
            events.append(batch)
    return events


def load_views(path: Path, name: str):  # noqa: ANN201 - a module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, help="another checkout, whose views are timed alongside")
    ap.add_argument("--evals", type=int, default=600)
    ap.add_argument("--layers", type=int, default=20)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from types import SimpleNamespace

    from PySide6.QtWidgets import QApplication

    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.metrics_view import MetricsView
    from wmstudio.gui.series import RunSeries

    app = QApplication(sys.argv[:1])
    sets: dict = {"this": SimpleNamespace(MetricsView=MetricsView, DriftView=DriftView)}
    if args.baseline:
        gui = args.baseline / "wmstudio" / "gui"
        metrics = load_views(gui / "metrics_view.py", "baseline_metrics_view")
        drift = load_views(gui / "drift_view.py", "baseline_drift_view") if (gui / "drift_view.py").exists() else metrics
        sets["baseline"] = SimpleNamespace(MetricsView=metrics.MetricsView, DriftView=drift.DriftView)
    views = {(who, kind): getattr(m, kind)() for who, m in sets.items() for kind in ("MetricsView", "DriftView")}
    for v in views.values():
        v.resize(1400, 850)
        v.show()
    app.processEvents()
    times: dict[tuple[str, str], list[float]] = {k: [] for k in views}
    series = RunSeries()
    for batch in synthetic(args.evals, args.layers, 10):
        for e in batch:
            series.apply(e)
        for key, view in views.items():  # interleaved, so load on the machine hits both alike
            t0 = time.perf_counter()
            view.show_series(series)
            view.repaint()
            app.processEvents()
            times[key].append(time.perf_counter() - t0)
    print(f"{len(series.eval_rows)} evaluations x {args.layers} layers, {series.last_step} steps; "
          "median ms per redraw (last half of the run):")
    for kind in ("MetricsView", "DriftView"):
        row = {who: 1000 * float(np.median(times[(who, kind)][len(times[(who, kind)]) // 2:])) for who in sets}
        ratio = f"  ratio this/baseline {row['this'] / row['baseline']:.2f}" if "baseline" in row else ""
        print(f"  {kind:12s} " + "  ".join(f"{who} {ms:.1f}" for who, ms in row.items()) + ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
