"""Sweep throughput (runs per minute) on a local Ray instance with one worker and with two, in one run.

The same 2 x 3 sweep on the built-in digits (two trigger schemes, three fine-tune learning rates;
two shared embeds, six attacks) into fresh folders. Ray start-up is included, as a user sees it.
    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from wmstudio.config import load_config
from wmstudio.resources import example_config
from wmstudio.sweep import expand, run_sweep


def main() -> None:
    base = load_config(example_config("demo")).to_dict()
    base["run"]["eval_batch_size"] = 1000  # the demo's own sizes: 15 + 6 + 8 epochs
    axes = {"trigger.scheme": ["content", "noise"], "finetune.lr": [0.01, 0.02, 0.04]}
    tmp = Path(tempfile.mkdtemp())
    results = {}
    try:
        for workers in (1, 2):
            spec = expand("bench", base, axes)
            start = time.perf_counter()
            summary = run_sweep(spec, tmp / f"w{workers}", workers=workers, progress=lambda _t: None)
            minutes = (time.perf_counter() - start) / 60
            assert summary.finished == len(spec.runs), summary.failures
            results[workers] = (len(spec.runs) / minutes, minutes * 60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"sweep of {len(spec.runs)} runs (+2 shared embeds) on the built-in digits, local Ray")
    print(f"{'workers':<10}{'runs/min':>10}{'seconds':>10}{'speed-up':>10}")
    for w, (rate, secs) in results.items():
        print(f"{w:<10}{rate:>10.1f}{secs:>10.1f}{rate / results[1][0]:>9.2f}x")


if __name__ == "__main__":
    main()
