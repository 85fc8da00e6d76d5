"""Sweep throughput: runs per minute with 1 and 2 local Ray workers, and through a two-node cluster.

One command, every figure side by side (the machine may be shared: compare the ratios, and see the
load average printed at the start and the end):

    .venv/bin/python benchmarks/bench_sweep.py [--quick]

The sweep: the demo's digits experiment with longer attacks (embed 15, fine-tune 80, restore 100
epochs: about 8 s a run on one quiet core), two trigger schemes x six fine-tune learning rates: two shared
embeds and twelve attacks, each task on one thread (enough tasks that Ray's start-up and the last
task's tail do not dominate). The same sweep goes into fresh folders three times:

- local Ray with 1 worker, then with 2 (Ray start-up included, as a user sees it);
- a cluster started with ``ray start`` on this machine: a head node that takes no work and a worker
  node with 2 CPUs, the driver's folder hidden from it where mount namespaces allow (see
  tests/ray_cluster.py); start-up of the cluster itself is not included, connecting is.

For each: runs/min over the whole command, and over the busy span (first task start to last task
end: what a long sweep tends to); utilisation (task seconds / (workers x wall)); where the rest goes
(start-up before the first task; the mean task's time, and the share of a core its training thread
got: with 2 workers on 2 cores anything else running takes it from the tasks); and bytes over the
network: into the object store (decoded data set and embed logs, once each; a node pulls each once)
and run logs streamed back (changed blocks only), per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from wmstudio.config_io import load_config  # noqa: E402
from wmstudio.resources import example_config  # noqa: E402
from wmstudio.sweep import expand, run_sweep  # noqa: E402


def _spec(quick: bool) -> Any:
    base = load_config(example_config("demo")).to_dict()
    base["run"]["eval_batch_size"] = 1000
    base["finetune"]["epochs"], base["restore"]["epochs"] = (2, 2) if quick else (80, 100)
    if quick:
        base["embed"]["epochs"] = 4
    axes = {"trigger.scheme": ["content", "noise"],
            "finetune.lr": [0.01, 0.02, 0.04] if quick else [0.005, 0.01, 0.015, 0.02, 0.03, 0.04]}
    return expand("bench", base, axes)


def _timeline(out: Path) -> dict[str, float]:
    recs = [json.loads(p.read_text()) for p in [*(out / "runs").glob("*.json"), *(out / "embeds").glob("*.json")]]
    starts = [r["started"] for r in recs]
    ends = [r["started"] + r["seconds"] for r in recs]
    attacks = [r for r in recs if r.get("kind") == "attack"]
    return {"first_start": min(starts), "last_end": max(ends), "task_seconds": sum(r["seconds"] for r in recs),
            "mean_attack": sum(r["seconds"] for r in attacks) / len(attacks),
            "cpu_share": sum(r.get("cpu_seconds", 0.0) for r in recs) / sum(r["seconds"] for r in recs)}


def _measure(label: str, out: Path, workers: int, **kwargs: Any) -> dict[str, Any]:
    spec = _spec(kwargs.pop("quick"))
    t0, cpu0 = time.time(), time.process_time()
    summary = run_sweep(spec, out, workers=workers, progress=lambda _t: None, **kwargs)
    wall, driver_cpu = time.time() - t0, time.process_time() - cpu0
    assert summary.finished == len(spec.runs), summary.failures
    tl = _timeline(out)
    busy = tl["last_end"] - tl["first_start"]
    return {"label": label, "workers": workers, "runs": len(spec.runs), "wall": wall,
            "rate": len(spec.runs) / wall * 60, "busy_rate": len(spec.runs) / busy * 60,
            "startup": tl["first_start"] - t0, "util": tl["task_seconds"] / (workers * wall),
            "mean_attack": tl["mean_attack"], "cpu_share": tl["cpu_share"],
            "driver_cpu": driver_cpu, "sent": summary.bytes_sent, "returned": summary.bytes_returned}


def _cluster_run(base: Path, quick: bool) -> dict[str, Any] | None:
    from ray_cluster import RESOURCE, Cluster, can_hide_folders

    driver = base / "driver"
    driver.mkdir()
    cluster = Cluster([driver] if can_hide_folders() else [])
    try:
        cluster.start_head()
        cluster.add_worker(cpus=2)
        cluster.wait_for_workers(2)  # its 2 slots of the resource
        os.environ["RAY_AUTH_MODE"] = "disabled"
        result = _measure("two-node cluster", driver / "out", 2, address=cluster.address, resources={RESOURCE: 1},
                          quick=quick)
        import ray

        ray.shutdown()
        result["hidden"] = bool(cluster.hidden)
        return result
    finally:
        cluster.stop()
        shutil.rmtree(cluster.base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (checks the benchmark, not a figure)")
    parser.add_argument("--no-cluster", action="store_true", help="only the local runs")
    args = parser.parse_args()
    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp())
    results = []
    try:
        for workers in (1, 2):
            results.append(_measure(f"local, {workers} worker{'s' * (workers > 1)}", tmp / f"w{workers}", workers,
                                    quick=args.quick))
        if not args.no_cluster:
            results.append(_cluster_run(tmp, args.quick))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one = results[0]
    n = one["runs"]
    print(f"sweep of {n} runs (+2 shared embeds{', quick' if args.quick else ''}) on the built-in "
          f"digits, one thread a task; {os.cpu_count()} CPUs; load average {load[0]:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"{'':<22}{'runs/min':>9}{'x':>6}{'busy r/min':>11}{'x':>6}{'wall s':>8}{'start s':>8}{'util':>6}"
          f"{'task s':>8}{'core':>6}{'driver s':>9}{'sent MiB':>9}{'back KiB/run':>13}")
    for r in results:
        if r is None:
            continue
        print(f"{r['label']:<22}{r['rate']:>9.1f}{r['rate'] / one['rate']:>5.2f}x{r['busy_rate']:>11.1f}"
              f"{r['busy_rate'] / one['busy_rate']:>5.2f}x{r['wall']:>8.1f}{r['startup']:>8.1f}{r['util']:>6.0%}"
              f"{r['mean_attack']:>8.1f}{r['cpu_share']:>6.0%}{r['driver_cpu']:>9.1f}{r['sent'] / 2**20:>9.2f}{r['returned'] / n / 2**10:>13.0f}")
    print("runs/min: over the whole command; busy: first task start to last task end; util: task seconds / "
          "(workers x wall); task s: mean attack task; core: CPU time of the tasks' training threads / their "
          "wall time, the share of a core each got (below 100%: the cores were busy with something else: "
          "the other worker, the driver, Ray, other programs); driver s: CPU seconds of this process (Ray's client, "
          "writing the streamed logs; its start-up included), taken from the workers' cores; sent: data set + embed logs put once (each node pulls "
          "them once); back: run log changes streamed per run")


if __name__ == "__main__":
    main()
