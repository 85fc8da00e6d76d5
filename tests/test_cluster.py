"""Sweeps and landscapes on a real two-node Ray cluster (``ray start``) with no shared filesystem.

The driver's folder (sweep file, sweep output, run logs) is hidden from the worker node where
mount namespaces are available (see ``tests/ray_cluster.py``), so a path of the driver that reached
a worker could not be read there. Work is forced onto the worker node with a custom resource.
The nodes are stopped by PID when the module's tests end, however they end.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from ray_cluster import RESOURCE, Cluster, can_hide_folders

pytestmark = pytest.mark.cluster

SWEEP = """
[sweep]
name = "cluster"
base = "demo"
[base]
embed.epochs = {embed}
finetune.epochs = {epochs}
restore.epochs = {epochs}
run.threads = 1
[axes]
"finetune.lr" = {lrs}
"""


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    driver = Path(tempfile.mkdtemp(prefix="wmd"))
    c = Cluster([driver] if can_hide_folders() else [])
    c.driver = driver  # type: ignore[attr-defined]
    try:
        c.start_head()
        c.add_worker()
        c.wait_for_workers(1)
        yield c
    finally:
        c.stop()
        shutil.rmtree(driver, ignore_errors=True)
        shutil.rmtree(c.base, ignore_errors=True)


def _wmstudio(cluster: Cluster, *args: str, wait: bool = True, out: Path | None = None):  # noqa: ANN202
    cmd = [sys.executable, "-m", "wmstudio", *args]
    env = {**cluster.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if wait:
        return subprocess.run(cmd, env=env, cwd=cluster.driver, capture_output=True, text=True, timeout=400)
    return subprocess.Popen(cmd, env=env, cwd=cluster.driver, stdout=out.open("w"), stderr=subprocess.STDOUT)


def _sweep_file(folder: Path, name: str, lrs: list[float], embed: int = 3, epochs: int = 1) -> Path:
    f = folder / f"{name}.toml"
    f.write_text(SWEEP.format(embed=embed, epochs=epochs, lrs=json.dumps(lrs)))
    return f


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


def _same_log(a: Path, b: Path) -> None:
    """Two run logs hold the same evaluations and weights (bit for bit)."""
    from wmstudio.runlog_reader import RunLogReader

    ra, rb = RunLogReader(a), RunLogReader(b)
    assert ra.status == rb.status == "finished"
    assert ra.stage_names() == rb.stage_names()
    for name in ra.stage_names():
        sa, sb = ra.stage(name), rb.stage(name)
        assert sa.eval.keys() == sb.eval.keys()
        for col in sa.eval:
            np.testing.assert_array_equal(sa.eval[col], sb.eval[col], err_msg=f"{a.name} {name}.{col}")
        wa, wb = ra.weights(name), rb.weights(name)
        assert all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa), name


def test_sweep_and_landscape_on_the_cluster_match_a_local_run(cluster: Cluster, tmp_path: Path) -> None:
    from wmstudio.landscape import LandscapeSpec, compute_landscape
    from wmstudio.sweep import load_sweep, run_sweep

    sweep = _sweep_file(cluster.driver, "match", [0.01, 0.03])
    out = cluster.driver / "match"
    r = _wmstudio(cluster, "sweep", str(sweep), "--out", str(out), "--address", cluster.address,
                  "--resource", f"{RESOURCE}=1", "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 finished" in r.stdout and "MiB of run logs streamed back" in r.stdout
    assert f"Ray cluster {cluster.address}: 2 nodes, 2 CPUs; no dashboard" in r.stderr  # started without one
    worker = cluster.live_workers()[0]
    records = _records(out)
    assert len(records) == 2
    for rec in [*records.values(), json.loads(next((out / "embeds").glob("*.json")).read_text())]:
        assert rec["status"] == "finished", rec
        assert rec["ran_on"]["cwd"] == str(worker.cwd)  # on the worker node, in its own empty folder
    assert not any(worker.cwd.iterdir())  # the tasks' scratch folders are gone

    # the same sweep locally (same seeds): the same logs, bit for bit
    local = tmp_path / "local"
    run_sweep(load_sweep(sweep), local, workers=1, progress=lambda _t: None)
    for run_id in records:
        _same_log(out / "runs" / f"{run_id}.h5", local / "runs" / f"{run_id}.h5")

    # a landscape of one run through the cluster, and the same one computed here
    run_id = sorted(records)[0]
    log = cluster.driver / "ls.h5"
    shutil.copy(out / "runs" / f"{run_id}.h5", log)
    args = ["--kind", "random", "--resolution", "5", "--images", "200", "--batch-size", "256", "--name", "r",
            "--precision", "fp32"]  # compared bit for bit below
    r = _wmstudio(cluster, "landscape", str(log), *args, "--ray", cluster.address, "--resource", f"{RESOURCE}=1",
                  "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    mine = tmp_path / "ls.h5"
    shutil.copy(out / "runs" / f"{run_id}.h5", mine)
    here = compute_landscape(mine, LandscapeSpec(kind="random", resolution=5, images=200, batch_size=256, name="r",
                                               precision="fp32"),
                             threads=1)
    from wmstudio.landscape import read

    there = read(log, "r")
    assert there.complete and here.complete
    for m in here.metrics:
        np.testing.assert_array_equal(there.metrics[m], here.metrics[m], err_msg=m)


def _digest(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _replace_worker(cluster: Cluster) -> None:
    for node in cluster.live_workers():
        node.kill()
    cluster.add_worker()


def test_killing_the_worker_node_mid_sweep_fails_only_its_run_and_a_rerun_completes(cluster: Cluster) -> None:
    sweep = _sweep_file(cluster.driver, "fault", [0.005, 0.01, 0.02], epochs=3)
    out = cluster.driver / "fault"
    base = ["sweep", str(sweep), "--out", str(out), "--address", cluster.address, "--resource", f"{RESOURCE}=1",
            "--retries", "0", "--no-report"]
    proc = _wmstudio(cluster, *base, wait=False, out=cluster.driver / "fault.out")
    try:
        def one_done_one_running() -> bool:
            states = [r.get("status") for r in _records(out).values()] if (out / "runs").is_dir() else []
            return "finished" in states and "running" in states

        _wait(one_done_one_running, 240, "a finished run and a running one")
        before = {rid: rec for rid, rec in _records(out).items()}
        finished = {rid: _digest(out / "runs" / f"{rid}.h5") for rid, rec in before.items()
                    if rec["status"] == "finished"}
        running = [rid for rid, rec in before.items() if rec["status"] == "running"]
        _replace_worker(cluster)  # kill -9 the worker node, then a new one joins
        assert proc.wait(300) == 1, (cluster.driver / "fault.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (cluster.driver / "fault.out").read_text()
    after = _records(out)
    lost = after[running[0]]
    assert lost["status"] == "failed" and "lost 1 time" in lost["error"], lost
    assert len(lost["attempts"]) == 1 and lost["attempts"][0]["ran_on"]["pid"] == before[running[0]]["ran_on"]["pid"]
    assert f"failed {running[0]}" in text
    others = [rid for rid in after if rid != running[0]]
    assert all(after[rid]["status"] == "finished" for rid in others), after  # the rest ran on the new node
    assert {rid: _digest(out / "runs" / f"{rid}.h5") for rid in finished} == finished

    again = _wmstudio(cluster, *base)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 finished, 2 skipped, 0 failed of 3" in again.stdout
    final = _records(out)
    assert all(r["status"] == "finished" for r in final.values())
    assert final[running[0]]["attempts"] == []
    assert {rid: _digest(out / "runs" / f"{rid}.h5") for rid in finished} == finished  # untouched


def test_killing_the_worker_node_mid_landscape_recomputes_its_points(cluster: Cluster, tmp_path: Path) -> None:
    from wmstudio.landscape import LandscapeSpec, compute_landscape, read
    from wmstudio.landscape.store import list_landscapes

    if not cluster.live_workers():
        cluster.add_worker()
    cluster.wait_for_workers(1)
    source = next((cluster.driver / "match" / "runs").glob("*.h5"), None) if (cluster.driver / "match").is_dir() \
        else None
    if source is None:  # this test alone: make a run log here
        from wmstudio.config_io import load_config
        from wmstudio.pipeline import run_experiment
        from wmstudio.resources import example_config

        source = tmp_path / "demo.h5"
        run_experiment(load_config(example_config("demo"), ["run.threads=1", "embed.epochs=3", "finetune.epochs=1",
                                                            "restore.epochs=1"]), source)
    log = cluster.driver / "lsfault.h5"
    shutil.copy(source, log)
    spec = dict(kind="random", resolution=31, images=0, batch_size=256, name="f", precision="fp32")
    args = ["--kind", "random", "--resolution", "31", "--images", "0", "--batch-size", "256", "--name", "f",
            "--precision", "fp32"]
    proc = _wmstudio(cluster, "landscape", str(log), *args, "--ray", cluster.address, "--resource",
                     f"{RESOURCE}=1", wait=False, out=cluster.driver / "lsfault.out")
    try:
        def some_points() -> bool:
            try:
                return "f" in list_landscapes(log) and int(read(log, "f").done.sum()) > 0
            except Exception:  # noqa: BLE001 - the driver is creating it
                return False

        _wait(some_points, 240, "the first points of the landscape")
        _replace_worker(cluster)
        assert proc.wait(300) == 0, (cluster.driver / "lsfault.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    there = read(log, "f")
    assert there.complete
    from wmstudio.log_file import open_log

    with open_log(log, "r") as f:
        incidents = json.loads(f["landscapes"]["f"].attrs["ray_incidents_json"])
    assert len(incidents) >= 1
    assert "lost" in (cluster.driver / "lsfault.out").read_text()
    mine = tmp_path / "here.h5"
    shutil.copy(source, mine)
    here = compute_landscape(mine, LandscapeSpec(**spec), threads=1)
    for m in here.metrics:
        np.testing.assert_array_equal(there.metrics[m], here.metrics[m], err_msg=m)

