"""Issue 24.1: a model file whose factory (or import) calls ``sys.exit()`` ends the app's run as failed
with a message naming the file; the app then quits and its process exits. Run in a subprocess with a
timeout, since the failure before the fix was a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui.main_window import MainWindow

    folder = Path(sys.argv[1])
    app = QApplication([])
    win = MainWindow(folder / "runs", QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                     background_engine=True)
    win.setup.load_config_file(str(folder / "cfg.toml"))
    win.show()

    def started():
        print("STARTED", win.start_run(), flush=True)

    def failed(title, message, *_):
        print("ERROR", title, "|", message, flush=True)
        QTimer.singleShot(100, lambda: (win.last_error.accept(), win.close()))  # OK, then Quit

    win.engine_ready.connect(started)
    win.control.error.connect(failed)
    sys.exit(app.exec())
""")


def model_file_config(folder: Path, name: str, code: str) -> Path:
    """``folder/name`` holding ``code``, and ``folder/cfg.toml`` a one-epoch run whose model that file builds."""
    model = folder / name
    model.write_text(code)
    (folder / "cfg.toml").write_text(
        f'[run]\nthreads = 2\n[model]\nfile = "{model}"\nfactory = "make"\n[embed]\nepochs = 1\n')
    return model


def run_driver(script: str, folder: Path, timeout: int) -> subprocess.CompletedProcess:
    """``script`` run offscreen in a process of its own with ``folder`` as its argument and working folder."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=folder)


def test_a_model_file_calling_sys_exit_fails_the_run_and_the_app_still_quits(tmp_path: Path) -> None:
    model = model_file_config(tmp_path, "exits.py",
                              "import sys\n\ndef make(in_channels, num_classes, image_size):\n    sys.exit()\n")
    proc = run_driver(DRIVER, tmp_path, 180)  # before the fix: "starting… 0%" forever
    assert "STARTED" in proc.stdout, proc.stderr
    error = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert error and f"{model}:make called sys.exit() while building the model" in error[0], proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_the_cli_run_of_such_a_model_file_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    model = tmp_path / "exits.py"
    model.write_text("import sys\n\ndef make(in_channels, num_classes, image_size):\n    sys.exit()\n")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[run]\nthreads = 2\n[model]\nfile = "{model}"\nfactory = "make"\n[embed]\nepochs = 1\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "wmstudio", "run", str(cfg), "-o", str(tmp_path / "out.h5"), "-q"],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert f"{model}:make called sys.exit() while building the model" in proc.stderr


def test_a_model_file_calling_sys_exit_on_import_is_a_config_error_naming_it(tmp_path: Path) -> None:
    from wmstudio.errors import ConfigError
    from wmstudio.models.registry import build_model

    model = tmp_path / "exits.py"
    model.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match=r"model.file: .*exits.py called sys.exit\(3\) while being imported"):
        build_model("", 1, 10, 8, file=str(model), factory="make")


QUIT_DURING_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from wmstudio.gui.main_window import MainWindow

    folder = Path(sys.argv[1])
    app = QApplication([])
    win = MainWindow(folder / "runs", QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                     background_engine=True)
    win.quits_app = True  # as wmstudio.gui.app.main sets it
    win.setup.load_demo_config()
    win.setup.form.set_value("embed.epochs", 60)
    QMessageBox.question = lambda *a, **k: QMessageBox.StandardButton.Yes  # "Cancel it and close?" Yes
    win.show()
    win.engine_ready.connect(lambda: print("STARTED", win.start_run(), flush=True))

    def poll():
        if win.ctl.busy and win.ctl.series.last_step >= 2:
            print("QUIT", flush=True)
            win.close()
        else:
            QTimer.singleShot(200, poll)

    QTimer.singleShot(200, poll)
    code = app.exec()
    print("LOOP ENDED", win.ctl.log_path, flush=True)
    from wmstudio.gui.app import leave_now, nothing_left_to_finish

    print("NOTHING LEFT", nothing_left_to_finish(), flush=True)  # the cancelled run's thread has stopped
    leave_now(code)  # as wmstudio.gui.app.main ends then (Python's teardown of Qt and torch is not waited for)
""")


def test_quit_during_a_run_cancels_it_keeps_the_log_and_the_process_exits(tmp_path: Path) -> None:
    """The window hides at once and closes for good when the cancelled run has stopped; that close must end
    the event loop (before the fix the process lived on with no window)."""
    proc = run_driver(QUIT_DURING_RUN, tmp_path, 240)
    assert "QUIT" in proc.stdout and "LOOP ENDED" in proc.stdout, proc.stdout + proc.stderr
    assert "NOTHING LEFT True" in proc.stdout and proc.returncode == 0, proc.stdout + proc.stderr
    from wmstudio.runlog_reader import RunLogReader

    log = proc.stdout.split("LOOP ENDED", 1)[1].split()[0]
    assert RunLogReader(log).status == "cancelled"


QUIT_IDLE = textwrap.dedent("""
    import atexit, sys, threading, time
    from PySide6.QtCore import QTimer
    from wmstudio.gui import app, main_window

    atexit.register(lambda: print("PYTHON SHUTDOWN", flush=True))
    shown = main_window.MainWindow.show

    def quit(self):
        if sys.argv[1] == "busy":  # a thread of ours still working: Python's shutdown waits for it
            threading.Thread(target=time.sleep, args=(2.0,)).start()
        self.close()

    def show(self):
        shown(self)
        self.engine_ready.connect(lambda: QTimer.singleShot(100, lambda: quit(self)))  # Quit once the engine is in

    main_window.MainWindow.show = show
    print("EXIT CODE", app.main(["--runs-dir", sys.argv[2], "--theme", "dark"]), flush=True)
""")


@pytest.mark.parametrize("busy", [False, True])
def test_quit_when_idle_ends_the_process_at_once_with_its_settings_saved(tmp_path: Path, busy: bool) -> None:
    """Idle Quit skipped Python's shutdown (3-5 s of tearing down widgets, PyTorch and CUDA libraries after
    the window had gone); with a thread of ours still working the ordinary shutdown waits for it."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.run([sys.executable, "-c", QUIT_IDLE, "busy" if busy else "idle", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("PYTHON SHUTDOWN" in proc.stdout) == busy and ("EXIT CODE 0" in proc.stdout) == busy, proc.stdout
    ini = (tmp_path / "config" / "wmstudio" / "Watermark Studio.conf").read_text()
    assert "theme=dark" in ini and "runs" in ini  # what the window saved as it closed is on disk


SLOW_IMPORT = textwrap.dedent("""
    import sys, time
    from pathlib import Path

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui.main_window import MainWindow

    folder = Path(sys.argv[1])
    app = QApplication([])
    win = MainWindow(folder / "runs", QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                     background_engine=True)
    win.quits_app = True
    win.setup.load_config_file(str(folder / "cfg.toml"))
    win.show()
    began = []

    def started():
        print("STARTED", win.start_run(), flush=True)
        QTimer.singleShot(1500, lambda: (began.append(time.monotonic()), win.control.cancel()))

    def changed():
        if began and not win.ctl.busy:
            print(f"ENDED after {time.monotonic() - began[0]:.1f}s:", win.run_panel.progress_label.text(), flush=True)
            QTimer.singleShot(100, win.close)  # Quit: the import is still sleeping in its abandoned thread

    win.engine_ready.connect(started)
    win.control.changed.connect(changed)
    win.control.error.connect(lambda title, message, *_: print("ERROR", title, "|", message, flush=True))
    code = app.exec()
    from wmstudio.gui.app import leave_now, nothing_left_to_finish

    print("NOTHING LEFT", nothing_left_to_finish(), flush=True)
    leave_now(code)
""")


def test_cancel_and_quit_do_not_wait_for_a_model_file_whose_import_hangs(tmp_path: Path) -> None:
    """Issue 24 (seen after the sys.exit() fix): a model file sleeping at import left Cancel saying
    "Cancelling…" until the import returned, and the process alive after Quit."""
    model_file_config(tmp_path, "slow.py",
                      "import time\ntime.sleep(600)\n\ndef make(in_channels, num_classes, image_size):\n    pass\n")
    proc = run_driver(SLOW_IMPORT, tmp_path, 240)  # before the fix: 600 s, then a failed run
    assert "STARTED" in proc.stdout, proc.stdout + proc.stderr
    ended = [line for line in proc.stdout.splitlines() if line.startswith("ENDED")]
    assert ended and "cancelled" in ended[0], proc.stdout + proc.stderr
    assert float(ended[0].split()[2].rstrip("s:")) < 10, ended
    assert "NOTHING LEFT True" in proc.stdout and proc.returncode == 0, proc.stdout + proc.stderr


def test_a_cancellable_call_ends_at_the_cancel_and_passes_on_what_it_raised() -> None:
    import threading
    import time

    from wmstudio.control import RunControl, cancellable, controlling
    from wmstudio.errors import Cancelled

    assert cancellable(lambda: 3) == 3  # no job control: called here
    control = RunControl()
    with controlling(control):
        assert cancellable(lambda: 4) == 4
        with pytest.raises(SystemExit):
            cancellable(lambda: sys.exit(5))
        with pytest.raises(ZeroDivisionError):
            cancellable(lambda: 1 / 0)
        threading.Timer(0.3, control.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            cancellable(lambda: time.sleep(30))
        assert time.monotonic() - t0 < 5


def test_a_cancelled_slow_model_import_is_cancelled_not_a_config_error(tmp_path: Path) -> None:
    import threading

    from wmstudio.control import RunControl, controlling
    from wmstudio.errors import Cancelled
    from wmstudio.models.registry import build_model

    model = tmp_path / "slow.py"
    model.write_text("import time\ntime.sleep(30)\n")
    control = RunControl()
    threading.Timer(0.3, control.cancel).start()
    with controlling(control), pytest.raises(Cancelled):
        build_model("", 1, 10, 8, file=str(model), factory="make")
