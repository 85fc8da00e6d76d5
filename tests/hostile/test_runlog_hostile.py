"""Hostile cases for the run log (issue 10, items 2, 3, 4 and 7): each ends in one clear error.

Overwriting, a second writer, a full or read-only disk, failing writes, damaged bytes, an unknown
format version, broken metadata and partial weights used as a checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, quick_config

from wmstudio.cli import main
from wmstudio.config_io import load_config, to_toml
from wmstudio.control import RunControl
from wmstudio.errors import RunLogError
from wmstudio.events import Metrics, Warning
from wmstudio.log_lock import WriterLock
from wmstudio.pipeline import run_experiment
from wmstudio.runlog import FORMAT_VERSION
from wmstudio.runlog_reader import RunLogReader

PY = sys.executable


def tiny(**sections: dict) -> dict:
    """A run of a few seconds: one epoch per stage, one thread."""
    base = quick_config(run={"threads": 1}, embed={"epochs": 1}, finetune={"epochs": 1}, restore={"epochs": 1})
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


def write_config(path: Path, data: dict) -> Path:
    path.write_text(to_toml(load_config(data=data)))
    return path


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile_log") / "small.h5"
    assert run_experiment(load_config(data=tiny()), out).status == "finished"
    return out


@pytest.fixture()
def log_copy(small_log: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_log, tmp_path / "copy.h5"))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ------------------------------------------------------------------ item 2: never overwrite unless asked

def test_an_existing_log_is_never_replaced_unless_asked(tmp_path, capsys, log_copy) -> None:
    cfg = write_config(tmp_path / "c.toml", tiny(finetune={"enabled": False}, restore={"enabled": False}))
    before = log_copy.read_bytes()
    code, err = cli(capsys, "run", str(cfg), "--out", str(log_copy), "--quiet")
    assert code == 2 and err.count("wmstudio: error:") == 1
    assert str(log_copy) in err and "--overwrite" in err and "exists" in err
    # a run that would fail at once does not replace it either
    code, err = cli(capsys, "run", str(cfg), "--out", str(log_copy), "--quiet", "--set", "model.checkpoint=/nope.pt")
    assert code == 2 and log_copy.read_bytes() == before
    with pytest.raises(RunLogError, match="exists already"):  # the engine API gives the app the same choice
        run_experiment(load_config(data=tiny()), log_copy)
    assert log_copy.read_bytes() == before
    assert cli(capsys, "run", str(cfg), "--out", str(log_copy), "--quiet", "--overwrite")[0] == 0
    assert [s.name for s in RunLogReader(log_copy).stages()] == ["embed"]
    assert not Path(f"{log_copy}.lock").exists()  # the lock file goes with the writer


# ------------------------------------------------------------------ item 3: one writer at a time

def test_a_second_writer_is_refused_naming_the_pid_and_readers_still_work(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path / "c.toml", tiny(embed={"epochs": 300}))
    out = tmp_path / "busy.h5"
    proc = subprocess.Popen([PY, "-m", "wmstudio", "run", str(cfg), "--out", str(out)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "[embed] epoch 2:" not in proc.stderr.readline():
            pass
        assert proc.poll() is None, "the first run ended too early"
        code, err = cli(capsys, "run", str(cfg), "--out", str(out), "--overwrite", "--quiet")
        assert code == 2 and f"process {proc.pid} is writing this log" in err and str(out) in err
        code, err = cli(capsys, "landscape", str(out), "--kind", "line", "--models", "embed,embed", "-q")
        assert code == 2 and f"process {proc.pid} is writing" in err
        assert cli(capsys, "inspect", str(out))[0] == 0  # readers are not locked out
        assert RunLogReader(out).status == "running"
        proc.send_signal(signal.SIGTERM)  # handled like Ctrl-C: cancel after this batch
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    r = RunLogReader(out)
    assert r.status == "cancelled" and r.stage("embed").status == "cancelled"
    with WriterLock(out):  # free again once the writer has gone
        pass


def test_the_lock_dies_with_a_killed_writer(tmp_path) -> None:
    log = tmp_path / "x.h5"
    code = f"from wmstudio.log_lock import WriterLock; WriterLock({str(log)!r}).acquire(); import os; os.kill(os.getpid(), 9)"
    subprocess.run([PY, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert Path(f"{log}.lock").exists()  # left behind by kill -9 ...
    with WriterLock(log), pytest.raises(RunLogError, match=f"process {os.getpid()} is writing"):
        WriterLock(log).acquire()  # taken over by this process, which a second writer is told


# ------------------------------------------------------------------ item 4: write failures

@pytest.fixture()
def small_fs(tmp_path: Path):  # noqa: ANN201 - yields a mount helper
    mounts: list[Path] = []

    def mount(size: str, options: str = "") -> Path:
        where = tmp_path / f"fs{len(mounts)}"
        where.mkdir()
        opts = f"size={size}" + (f",{options}" if options else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs (needs root): {res.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_a_full_disk_stops_the_run_cleanly(tmp_path, small_fs) -> None:
    """A real 3 MiB filesystem: the run stops with one error, the log says failed and stays readable."""
    fs = small_fs("3M")
    cfg = write_config(tmp_path / "c.toml", tiny(embed={"epochs": 20}))
    out = fs / "run.h5"
    res = subprocess.run([PY, "-m", "wmstudio", "run", str(cfg), "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"wmstudio: error: {out}: disk full"), last
    r = RunLogReader(out)
    assert r.status == "failed" and "disk full" in r.attrs["status_message"]
    embed = r.stage("embed")
    assert embed.status == "failed" and len(embed.eval["test_acc"]) >= 1  # what was committed is there
    assert r.trigger()["images"].shape[0] == 100
    assert subprocess.run([PY, "-m", "wmstudio", "inspect", str(out)], cwd=ROOT, capture_output=True).returncode == 0


def test_a_read_only_filesystem_is_one_clear_error(tmp_path, small_fs, capsys) -> None:
    fs = small_fs("1M", "ro")
    cfg = write_config(tmp_path / "c.toml", tiny())
    code, err = cli(capsys, "run", str(cfg), "--out", str(fs / "run.h5"), "--quiet")
    assert code == 2 and err.count("wmstudio: error:") == 1
    assert str(fs / "run.h5") in err and "Read-only file system" in err


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES])
def test_a_failing_write_mid_run_marks_the_log_failed(tmp_path, monkeypatch, err) -> None:
    """An injected I/O or permission error on the second evaluation's commit."""
    import wmstudio.runlog as runlog

    real = runlog._append
    seen = {"metrics": 0}

    def callback(event: object) -> None:
        if isinstance(event, Metrics):
            seen["metrics"] += 1
            if seen["metrics"] == 2:
                def failing(*_a: object, **_k: object) -> None:
                    raise OSError(err, os.strerror(err))
                monkeypatch.setattr(runlog, "_append", failing)

    out = tmp_path / "run.h5"
    with pytest.raises(RunLogError, match=os.strerror(err)) as info:
        run_experiment(load_config(data=tiny(embed={"epochs": 4})), out, callback)
    assert str(out) in str(info.value) and "write failed" in str(info.value)
    monkeypatch.setattr(runlog, "_append", real)
    r = RunLogReader(out)
    assert r.status == "failed" and os.strerror(err) in r.attrs["status_message"]
    assert r.stage("embed").status == "failed" and len(r.stage("embed").eval["test_acc"]) >= 1


# ------------------------------------------------------------------ item 7: damaged logs

def _chunk_offset(path: Path, dataset: str) -> int:
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        assert ds.fletcher32, f"{dataset} carries no checksum"
        return ds.id.get_chunk_info(0).byte_offset


def test_damage_in_the_data_region_is_detected_and_named(log_copy, capsys) -> None:
    with h5py.File(log_copy, "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION
        name = next(f"/stages/embed/weights/{k}" for k, v in f["stages/embed/weights"].items() if v.ndim >= 2)
    offset = _chunk_offset(log_copy, name)
    with open(log_copy, "r+b") as fh:
        fh.seek(offset + 16)
        fh.write(b"\x5a" * 8)
    with pytest.raises(RunLogError, match=f"{log_copy}: dataset {name} is damaged"):
        RunLogReader(log_copy).weights("embed")
    # a landscape no longer computes from damaged weights (it did, with exit 0)
    code, err = cli(capsys, "landscape", str(log_copy), "--kind", "line", "--models", "embed,restore",
                    "--resolution", "3", "-q")
    assert code == 2 and f"dataset {name} is damaged" in err
    # ... and neither does a run starting from them
    code, err = cli(capsys, "run", str(ROOT / "resources" / "examples" / "demo.toml"), "--out",
                    str(log_copy.with_name("next.h5")), "-q", "--set", f"model.checkpoint={log_copy}:embed")
    assert code == 2 and "is damaged" in err


def test_damaged_scalars_are_detected(log_copy) -> None:
    with h5py.File(log_copy, "a") as f:
        key = next(k for k, v in f["stages/embed/weights"].items() if v.ndim == 0)  # num_batches_tracked
        ds = f[f"stages/embed/weights/{key}"]
        ds[()] = ds[()] + 1  # bypasses the writer: its crc32 no longer matches
    with pytest.raises(RunLogError, match="crc32 mismatch"):
        RunLogReader(log_copy).weights("embed")


@pytest.mark.parametrize("where", [0.0, 0.0005, 0.3, 0.6, 0.97])
def test_random_bytes_inside_a_log_are_a_clear_error(log_copy, capsys, where) -> None:
    size = log_copy.stat().st_size
    rng = np.random.default_rng(int(where * 1e4))
    with open(log_copy, "r+b") as fh:
        fh.seek(int(size * where))
        fh.write(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    code, err = cli(capsys, "inspect", str(log_copy))
    try:  # whatever was hit: a clean read or one RunLogError naming the file, never another exception
        r = RunLogReader(log_copy)
        for s in r.stage_names():
            r.stage(s)
            r.weights(s)
            r.trajectory(s)
        r.trigger()
        r.splits()
    except RunLogError as exc:
        assert str(log_copy) in str(exc)
    assert code in (0, 2)
    if code == 2:
        assert err.startswith(f"wmstudio: error: {log_copy}") and err.count("\n") == 1


@pytest.mark.parametrize("version,expected", [(99, "format_version 99 is unknown: newer than this wmstudio reads"),
                                              ("2b", "format_version '2b' is unknown"),
                                              (0, "format_version 0 is unknown")])
def test_an_unknown_format_version_is_refused(log_copy, capsys, version, expected) -> None:
    with h5py.File(log_copy, "a") as f:
        f.attrs["format_version"] = version
    with pytest.raises(RunLogError, match=expected):
        RunLogReader(log_copy)
    code, err = cli(capsys, "inspect", str(log_copy))
    assert code == 2 and expected in err


def test_a_version_1_log_without_checksums_still_reads(log_copy, tmp_path) -> None:
    old = tmp_path / "v1.h5"
    with h5py.File(log_copy, "r") as src, h5py.File(old, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        dst.attrs["format_version"] = 1
        for k in src:
            if k != "stages":
                src.copy(k, dst)
        g = dst.create_group("stages/embed")
        g.attrs.update(dict(src["stages/embed"].attrs))
        for sub in ("train", "eval", "layers", "weights"):
            h = g.create_group(sub)
            for k, v in src[f"stages/embed/{sub}"].items():
                h.create_dataset(k, data=v[()])  # no fletcher32, no crc32
    assert RunLogReader(old).weights("embed").keys() == RunLogReader(log_copy).weights("embed").keys()


def test_broken_metadata_as_a_checkpoint_is_a_clear_error(log_copy, tmp_path, capsys) -> None:
    with h5py.File(log_copy, "a") as f:
        f["stages/embed"].attrs["order"] = "first"  # not a number
        f["stages/finetune"].attrs["config_json"] = "{broken"
    cfg = write_config(tmp_path / "c.toml", tiny(embed={"enabled": False}))
    out = tmp_path / "next.h5"
    code, err = cli(capsys, "run", str(cfg), "--out", str(out), "-q", "--set", f"model.checkpoint={log_copy}:embed")
    assert code == 2 and err.count("wmstudio: error:") == 1 and str(log_copy) in err
    assert not out.exists()


def test_partial_weights_as_a_checkpoint_load_with_a_warning(tmp_path) -> None:
    control = RunControl()

    def cancel_on_first_eval(event: object) -> None:
        if isinstance(event, Metrics) and event.stage == "embed" and event.epoch >= 1:
            control.cancel()

    cancelled = tmp_path / "cancelled.h5"
    result = run_experiment(load_config(data=tiny(embed={"epochs": 5})), cancelled, cancel_on_first_eval, control)
    assert result.status == "cancelled"
    events: list[object] = []
    cfg = load_config(data=tiny(embed={"enabled": False}, restore={"enabled": False}))
    cfg.model.checkpoint = f"{cancelled}:embed"
    run_experiment(cfg, tmp_path / "next.h5", events.append)
    notes = [e.message for e in events if isinstance(e, Warning)]
    assert any(f"{cancelled}:embed: partial weights" in n and "'cancelled'" in n for n in notes), notes
    finished = tmp_path / "next.h5"
    events.clear()
    cfg.model.checkpoint = f"{finished}:finetune"  # complete weights: no warning
    run_experiment(cfg, tmp_path / "third.h5", events.append)
    assert not [e for e in events if isinstance(e, Warning) and "partial" in e.message]


def test_a_damaged_config_attribute_is_a_clear_error(log_copy, capsys) -> None:
    with h5py.File(log_copy, "a") as f:
        f.attrs["config_json"] = '{"model": {"arch": "small_cnn"\x01'
    code, err = cli(capsys, "inspect", str(log_copy))  # its checksum no longer matches
    assert code == 2 and f"{log_copy}: / attribute 'config_json' is damaged (crc32 mismatch)" in err
    code, err = cli(capsys, "landscape", str(log_copy), "--kind", "line", "--models", "embed,restore", "-q")
    assert code == 2 and "config_json" in err
    with h5py.File(log_copy, "a") as f:  # a log without attribute checksums (written before them): parsed
        del f.attrs["config_json_crc32"]
    code, err = cli(capsys, "inspect", str(log_copy))
    assert code == 2 and f"{log_copy}: damaged or not a complete run log (config_json:" in err


def test_inspect_a_log_that_stopped_before_its_data(tmp_path, capsys) -> None:
    from wmstudio.runlog import RunLogWriter

    w = RunLogWriter.create(tmp_path / "early.h5", "", "{}", "early", "cpu")
    w.set_status("failed", "stopped before the data")
    w.close()
    code, err = cli(capsys, "inspect", str(tmp_path / "early.h5"))
    assert code == 0 and not err
