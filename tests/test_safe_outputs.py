"""Output paths are safe (issue 22): no file is written through a link, lock files are created without
following links, a writer notices its lock removed and a second writer cannot take the log over, every
command that writes a file refuses to replace one without --overwrite (the app asks), exports keep the
usual permissions, --workers is bounded by cores and memory, and a Ray address that does not answer
fails within a stated timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from wmstudio.cli import main
from wmstudio.errors import ConfigError, OutputError, RunLogError
from wmstudio.log_lock import WriterLock
from wmstudio.runlog import RunLogWriter
from wmstudio.runlog_reader import RunLogReader
from wmstudio.safe_files import atomic_output, write_text


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def refused(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> None:
    """The command ends in one error naming ``path`` and --overwrite."""
    code, err = cli(capsys, *argv)
    assert code == 2 and err.count("wmstudio: error:") == 1, err
    assert str(path) in err and "exists already" in err and "--overwrite" in err, err


@pytest.fixture()
def victim(tmp_path: Path) -> Path:
    v = tmp_path / "elsewhere" / "victim.txt"
    v.parent.mkdir()
    v.write_text("precious")
    return v


def new_log(path: Path, overwrite: bool = False) -> RunLogWriter:
    return RunLogWriter.create(path, "", "{}", "t", "cpu", overwrite=overwrite)


# ------------------------------------------------------------------ links at lock, temporary and target paths

def test_a_link_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path, victim) -> None:
    log = tmp_path / "run.h5"
    (tmp_path / "run.h5.lock").symlink_to(victim)
    with pytest.raises(RunLogError, match=r"run\.h5\.lock.*symbolic link"):
        new_log(log)
    assert victim.read_text() == "precious" and not log.exists()
    dangling = tmp_path / "other.h5"
    (tmp_path / "other.h5.lock").symlink_to(tmp_path / "elsewhere" / "created.txt")
    with pytest.raises(RunLogError, match="symbolic link"):
        WriterLock(dangling).acquire()
    assert not (tmp_path / "elsewhere" / "created.txt").exists()  # a dangling link is not followed to create


def test_a_run_log_that_is_a_link_is_refused(tmp_path, victim) -> None:
    log = tmp_path / "run.h5"
    log.symlink_to(victim)
    for overwrite in (False, True):
        with pytest.raises(RunLogError, match="symbolic link"):
            new_log(log, overwrite)
    assert victim.read_text() == "precious" and log.is_symlink()


def test_export_model_never_writes_through_a_link(demo_run, tmp_path, victim, capsys) -> None:
    out = tmp_path / "out" / "y.pt"
    out.parent.mkdir()
    (out.parent / "y.pt.tmp").symlink_to(victim)  # the old fixed temporary name
    assert cli(capsys, "export-model", f"{demo_run}:embed", "--out", str(out))[0] == 0
    assert victim.read_text() == "precious" and out.stat().st_size > 1000
    assert sorted(p.name for p in out.parent.iterdir()) == ["y.pt", "y.pt.tmp"]  # no temporary left behind
    link = tmp_path / "out" / "z.safetensors"
    link.symlink_to(victim)
    for extra in ([], ["--overwrite"]):  # a link at the target is never written through, nor replaced
        code, err = cli(capsys, "export-model", f"{demo_run}:embed", "--out", str(link), *extra)
        assert code == 2 and "symbolic link" in err and str(link) in err
    assert victim.read_text() == "precious" and link.is_symlink()


def test_the_temporary_is_private_and_a_failed_write_leaves_the_target_as_it_was(tmp_path) -> None:
    target = tmp_path / "t.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_output(target, overwrite=True) as tmp:
        assert tmp.parent.parent == tmp_path and tmp.name == "t.txt"
        assert (tmp.parent.stat().st_mode & 0o777) == 0o700  # nobody else can put a link where it writes
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


# ------------------------------------------------------------------ a lock removed mid-run

def test_a_writer_notices_its_lock_removed_and_a_second_writer_cannot_take_over(tmp_path) -> None:
    log = tmp_path / "run.h5"
    writer = new_log(log)
    try:
        writer.set_status("running", "first")
        os.unlink(f"{log}.lock")
        with pytest.raises(RunLogError, match=r"another process is writing this log \(its lock file run\.h5\.lock was"):
            WriterLock(log).acquire()  # the first writer holds the log itself: no takeover
        with pytest.raises(RunLogError, match="another process is writing this log"):
            new_log(log, overwrite=True)
        assert RunLogReader(log).attrs["status_message"] == "first"  # the first writer's log is intact
        with pytest.raises(RunLogError, match=r"its lock file run\.h5\.lock was removed or replaced"):
            writer.set_status("finished")  # the first writer stops at its next commit
    finally:
        writer.close()
    assert RunLogReader(log).attrs["status_message"] == "first"
    with WriterLock(log):  # free once the writer has gone
        pass


def test_a_second_run_with_overwrite_is_refused_after_the_lock_file_is_deleted(tmp_path, capsys) -> None:
    log = tmp_path / "busy.h5"
    code = (f"from wmstudio.runlog import RunLogWriter; RunLogWriter.create({str(log)!r}, '', '{{}}', 'first', 'cpu'); "
            "print('ready', flush=True); import time; time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        before = log.read_bytes()
        os.unlink(f"{log}.lock")
        code, err = cli(capsys, "demo", "--out", str(log), "--overwrite", "--quiet", "--set", "run.threads=1")
        assert code == 2 and err.count("wmstudio: error:") == 1 and "is writing this log" in err and str(log) in err
        assert log.read_bytes() == before and RunLogReader(log).attrs["run_name"] == "first"
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ no silent overwrite

def test_export_model_refuses_an_existing_file_and_replaces_it_with_overwrite(demo_run, tmp_path, capsys) -> None:
    for name in ("m.safetensors", "m.pt"):
        out = tmp_path / name
        out.write_bytes(b"mine")
        refused(capsys, out, "export-model", f"{demo_run}:embed", "--out", str(out))
        assert out.read_bytes() == b"mine"
        assert cli(capsys, "export-model", f"{demo_run}:embed", "--out", str(out), "--overwrite")[0] == 0
        assert out.stat().st_size > 1000


def test_exports_get_the_usual_permissions_in_both_formats(demo_run, tmp_path, capsys) -> None:
    old = os.umask(0o022)
    try:
        modes = set()
        for name in ("m.safetensors", "m.pt"):
            assert cli(capsys, "export-model", f"{demo_run}:embed", "--out", str(tmp_path / name))[0] == 0
            modes.add((tmp_path / name).stat().st_mode & 0o777)
    finally:
        os.umask(old)
    assert modes == {0o644}


def test_null_models_refuse_an_existing_file_before_measuring_or_training(demo_run, tmp_path, capsys) -> None:
    ckpt = tmp_path / "m.pt"
    assert cli(capsys, "export-model", f"{demo_run}:embed", "--out", str(ckpt))[0] == 0
    out = tmp_path / "null.h5"
    out.write_bytes(b"mine")
    args = ["null-models", "--checkpoints", str(ckpt), "--trigger", str(demo_run), "--out", str(out)]
    refused(capsys, out, *args)
    start = time.monotonic()
    refused(capsys, out, "null-models", str(ROOT / "resources/examples/demo.toml"), "--count", "3", "--out", str(out))
    assert time.monotonic() - start < 10 and not (tmp_path / "null_models").exists()  # nothing was trained
    assert out.read_bytes() == b"mine"
    assert cli(capsys, *args, "--overwrite")[0] == 0
    assert out.stat().st_size > 1000


def test_triggers_refuse_existing_files_before_writing_any(demo_run, tmp_path, capsys) -> None:
    out = tmp_path / "trig"
    assert cli(capsys, "triggers", str(demo_run), "--out", str(out))[0] == 0
    first = out / "trigger_0000.png"
    (out / "labels.csv").write_text("mine")
    for png in out.glob("*.png"):
        png.unlink()  # the folder still holds labels.csv: refused before any PNG is written
    refused(capsys, out / "labels.csv", "triggers", str(demo_run), "--out", str(out))
    assert (out / "labels.csv").read_text() == "mine" and not first.exists()
    assert cli(capsys, "triggers", str(demo_run), "--out", str(out), "--overwrite")[0] == 0
    assert (out / "labels.csv").read_text().startswith("file,label") and first.exists()


def test_landscape_export_refuses_existing_figures(demo_copy, tmp_path, capsys) -> None:
    assert cli(capsys, "landscape", str(demo_copy), "--kind", "line", "--models", "embed,finetune", "--resolution",
               "3", "--images", "32", "-q")[0] == 0
    out = tmp_path / "figs"
    args = ["export", str(demo_copy), "--metric", "trigger_acc", "--format", "png", "--out", str(out)]
    assert cli(capsys, *args)[0] == 0
    (figure,) = out.iterdir()
    figure.write_bytes(b"mine")
    refused(capsys, figure, *args)
    assert figure.read_bytes() == b"mine"
    assert cli(capsys, *args, "--overwrite")[0] == 0 and figure.read_bytes()[:4] == b"\x89PNG"


def test_report_refuses_existing_report_files(tmp_path, capsys) -> None:
    from test_sweep_intervals import _fake_sweep

    _fake_sweep(tmp_path / "s", [({"attack.kind": k, "run.seed": s}, (0.3, 0.9)) for k in ("prune", "noise")
                                 for s in (0, 1)])
    assert cli(capsys, "report", str(tmp_path / "s"))[0] == 0
    md = tmp_path / "s" / "report.md"
    md.write_text("mine")
    refused(capsys, tmp_path / "s" / "report.csv", "report", str(tmp_path / "s"))  # the first of the report's files
    assert md.read_text() == "mine"
    assert cli(capsys, "report", str(tmp_path / "s"), "--overwrite")[0] == 0 and md.read_text().startswith("#")


def test_the_app_asks_before_an_export_into_a_folder_replaces_files(qtbot, tmp_path, monkeypatch) -> None:
    import pyqtgraph as pg
    from PySide6.QtWidgets import QMessageBox

    from wmstudio.gui import file_dialogs

    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    plot = widget.addPlot()
    plot.plot([0, 1, 2], [1, 0, 1])
    widget.resize(400, 300)
    widget.show()
    plots = {"loss": plot}
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getExistingDirectory", lambda *a, **k: str(tmp_path))
    asked: list[str] = []

    def answer(reply: QMessageBox.StandardButton):  # noqa: ANN202
        def question(_parent, _title, text, *_a, **_k):  # noqa: ANN001, ANN202
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert "Exported 2 files" in file_dialogs.export_plots(widget, plots, None, tmp_path)
    assert not asked  # nothing to replace: no question
    (tmp_path / "loss.svg").write_text("mine")
    assert file_dialogs.export_plots(widget, plots, None, tmp_path) == ""  # the user said no
    assert len(asked) == 1 and "loss.svg" in asked[0] and (tmp_path / "loss.svg").read_text() == "mine"
    with pytest.raises(OutputError, match="loss.png: exists already"):  # the engine-side call never replaces without being told
        file_dialogs.write_plots(plots, None, tmp_path)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert "Exported 2 files" in file_dialogs.export_plots(widget, plots, None, tmp_path)
    assert "<svg" in (tmp_path / "loss.svg").read_text()[:2000]


# ------------------------------------------------------------------ workers and Ray addresses

def test_workers_are_bounded_by_cores_and_memory_with_the_reason(monkeypatch, demo_run, capsys) -> None:
    from wmstudio.landscape import worker_limit

    monkeypatch.setattr(worker_limit, "usable_cores", lambda: 2)
    with pytest.raises(ConfigError, match=r"--workers: 64 worker processes .* 2 cores: at most 2"):
        worker_limit.check_workers(64, worker_limit.WORKER_BASE_BYTES)
    monkeypatch.setattr(worker_limit, "available_memory", lambda: 2**30)
    with pytest.raises(ConfigError, match=r"2 workers need about 1\.2 GiB .* 1\.0 GiB of memory is available: at most 1"):
        worker_limit.check_workers(2, 600 * 2**20)
    worker_limit.check_workers(1, 600 * 2**20)
    start = time.monotonic()
    code, err = cli(capsys, "landscape", str(demo_run), "--workers", "64", "--kind", "line", "--models", "embed,restore")
    assert code == 2 and "--workers" in err and "2 cores" in err and time.monotonic() - start < 5


def test_a_ray_address_that_does_not_answer_fails_within_the_stated_timeout(monkeypatch, demo_run, capsys) -> None:
    import socket

    from wmstudio.sweep import ray_address

    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:1 does not answer.*at most 30 s"):
        ray_address.check_ray_address("127.0.0.1:1")  # refused: at once
    code, err = cli(capsys, "landscape", str(demo_run), "--ray", "127.0.0.1:1", "--kind", "line", "--models",
                    "embed,restore", "-q")
    assert code == 2 and "does not answer" in err
    assert time.monotonic() - start < 60  # not Ray's own 150 s of retries (a loose bound: CI machines are busy)

    def silent(*_a, timeout: float = 0.0, **_k):  # noqa: ANN202 - a host that never answers
        time.sleep(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"no answer within 0\.5 s"):
        ray_address.check_ray_address("head.example:6379", timeout=0.5)
    assert time.monotonic() - start < 3
    monkeypatch.setattr(ray_address, "check_ray_address", lambda a, timeout=30.0: (_ for _ in ()).throw(
        ConfigError("", f"{a}: probed")))
    from wmstudio.sweep.runner import init_ray

    with pytest.raises(ConfigError, match="10.0.0.1:6379: probed"):  # every connection to a cluster is probed first
        init_ray("10.0.0.1:6379", 1)
