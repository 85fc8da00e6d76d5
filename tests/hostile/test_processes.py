"""Hostile cases for processes (issue 10, item 8): an interrupted driver leaves nothing behind.

A sweep on Ray, a landscape on Ray and a landscape on a worker pool are each started in a session of
their own, then stopped by SIGTERM, by SIGINT while running in the background (``cmd &``, where the
shell starts it with SIGINT ignored), or by ``kill -9``. Leftovers are counted by the driver's process
group and by the descendants recorded while it ran (PID and start time), never by name across the
machine, where other Ray instances may run.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, quick_config

from tests.ray_cluster import cmdline
from wmstudio.config_io import load_config
from wmstudio.pipeline import run_experiment
from wmstudio.sweep.watchdog import alive, descendants

pytest.importorskip("ray")
if not sys.platform.startswith("linux"):
    pytest.skip("process trees are read from /proc", allow_module_level=True)

SWEEP = """
[sweep]
name = "killed"
base = "demo"
[base]
embed.epochs = 5000
finetune.epochs = 1
restore.epochs = 1
run.threads = 1
[axes]
"finetune.lr" = [0.01, 0.03]
"""
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _pgid_members(pgid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                text = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(name))
    return out


def run_and_interrupt(argv: list[str], tmp_path: Path, ready: str, ready_tree: str, how: str) -> tuple[int, str]:
    """Start ``argv``; once ``ready`` is in its output and a process whose command line holds ``ready_tree``
    runs under it, stop it ``how`` (term | background-int | kill); return its exit status and output.
    Asserts that every process it started is gone afterwards."""
    out = tmp_path / "driver.txt"
    out.touch()
    cmd = " ".join(shlex.quote(a) for a in argv)
    if how == "background-int":  # no job control in `sh -c`: the background job starts with SIGINT ignored
        log = shlex.quote(str(out))
        shell = subprocess.Popen(["sh", "-c", f"{cmd} > {log} 2>&1 & pid=$!; echo $pid; wait $pid; echo exit=$? >> {log}"],
                                 cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert shell.stdout is not None
        driver, top = int(shell.stdout.readline()), shell.pid
    else:
        shell = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=out.open("w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        driver, top = shell.pid, shell.pid
    seen: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            tree = descendants(top)
            seen.update(tree)
            if ready in out.read_text(errors="replace") and any(ready_tree in cmdline(p) for p in tree):
                break
            assert shell.poll() is None, f"ended before it was interrupted:\n{out.read_text()[-3000:]}"
            time.sleep(0.2)
        else:
            tree = "\n".join(f"{p} {cmdline(p)[:80]}" for p in descendants(top))
            pytest.fail(f"never got ready:\n{out.read_text()[-1000:]}\nprocesses:\n{tree}")
        for _ in range(10):  # the whole tree, workers included
            seen.update(descendants(top))
            time.sleep(0.2)
        assert len(seen) >= 2
        os.kill(driver, {"term": signal.SIGTERM, "background-int": signal.SIGINT, "kill": signal.SIGKILL}[how])
        code = shell.wait(timeout=120)
        if how == "background-int":
            text = out.read_text()
            code = int(text.rsplit("exit=", 1)[-1]) if "exit=" in text else -1
            out.write_text(text.rsplit("exit=", 1)[0])
        deadline = time.monotonic() + 30  # the watchdog's grace period, then SIGKILL
        while time.monotonic() < deadline:
            left = [p for p, s in seen.items() if alive(p, s)] + _pgid_members(top)
            if not left:
                break
            time.sleep(0.3)
        assert not left, "left behind: " + "; ".join(f"{p} {cmdline(p)[:100]}" for p in sorted(set(left)))
        return code, out.read_text(errors="replace")
    finally:
        for p, s in seen.items():
            if alive(p, s):
                os.kill(p, signal.SIGKILL)


@pytest.fixture()
def sweep_file(tmp_path: Path) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    return f


def _sweep_argv(sweep_file: Path, tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "wmstudio", "sweep", str(sweep_file), "--out", str(tmp_path / "out"), "--workers", "1"]


def test_a_terminated_sweep_shuts_ray_down(sweep_file, tmp_path) -> None:
    code, text = run_and_interrupt(_sweep_argv(sweep_file, tmp_path), tmp_path, "runs to do", "ray::run_task", "term")
    assert code == 130 and "Traceback" not in text
    assert "sweep interrupted" in text and text.strip().splitlines()[-1] == "wmstudio: aborted"


def test_a_sweep_in_the_background_stops_on_sigint(sweep_file, tmp_path) -> None:
    code, text = run_and_interrupt(_sweep_argv(sweep_file, tmp_path), tmp_path, "runs to do", "ray::run_task",
                                   "background-int")
    assert code == 130 and "Traceback" not in text and "sweep interrupted" in text


def test_a_killed_sweep_leaves_no_ray_process(sweep_file, tmp_path) -> None:
    run_and_interrupt(_sweep_argv(sweep_file, tmp_path), tmp_path, "runs to do", "ray::run_task", "kill")


@pytest.fixture(scope="module")
def landscape_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("proc_landscape") / "run.h5"
    data = quick_config(run={"threads": 1}, embed={"epochs": 1}, finetune={"epochs": 1}, restore={"epochs": 1})
    run_experiment(load_config(data=data), out)
    return out


def _landscape_argv(log: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wmstudio", "landscape", str(log), "--kind", "random", "--resolution", "81",
            "--images", "0", *extra]


@pytest.mark.parametrize("how", ["kill", "background-int"])
def test_an_interrupted_landscape_on_ray_leaves_no_process(landscape_log, tmp_path, how) -> None:
    argv = _landscape_argv(landscape_log, "--ray", "--workers", "1")
    code, text = run_and_interrupt(argv, tmp_path, "level", "LandscapeActor", how)
    if how == "background-int":
        assert code == 130 and "Traceback" not in text and "cancelled" in text


@pytest.mark.parametrize("how", ["kill", "term"])
def test_an_interrupted_landscape_worker_pool_leaves_no_process(landscape_log, tmp_path, how) -> None:
    code, text = run_and_interrupt(_landscape_argv(landscape_log, "--workers", "2"), tmp_path, "level",
                                   "multiprocessing", how)
    if how == "term":  # cancelled like Ctrl-C: the points so far are committed, the surface can be resumed
        assert code == 130 and "Traceback" not in text and "cancelled in" in text


def test_a_sweep_folder_holding_another_sweep_is_not_resumed_into(sweep_file, tmp_path, capsys) -> None:
    """Run ids hash the axis values only: another sweep's finished runs would pass for this one's."""
    from wmstudio.cli import main
    from wmstudio.sweep import load_sweep
    from wmstudio.sweep.records import write_json

    out = tmp_path / "out"
    other = load_sweep(sweep_file)
    write_json(out / "sweep.json", {**__import__("json").loads(other.to_json()), "out": str(out)})
    changed = tmp_path / "changed.toml"
    changed.write_text(SWEEP.replace("embed.epochs = 5000", "embed.epochs = 7"))
    assert main(["sweep", str(changed), "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("wmstudio: error:") == 1 and f"{out}: holds another sweep ('killed'" in err and "--overwrite" in err
    assert "Traceback" not in err
