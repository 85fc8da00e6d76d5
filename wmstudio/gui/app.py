"""``wmstudio-gui``: the desktop app."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wmstudio-gui", description="Watermark Studio, the desktop app")
    p.add_argument("logs", nargs="*", help="run logs to open")
    p.add_argument("--demo", action="store_true", help="load the built-in demo and start it")
    p.add_argument("--config", help="load this experiment config")
    p.add_argument("--runs-dir", help="where new run logs are written (remembered)")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="colour theme (remembered)")
    return p


def install_error_hook(win: Any) -> None:
    """An error that escapes a slot (a bug) is shown in the window, not only printed to a terminal
    the user may not have; the app keeps running."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(exc_type, exc, tb)
        if issubclass(exc_type, KeyboardInterrupt):
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        with contextlib.suppress(Exception):  # the window itself is broken: the terminal has the report
            win.show_error("Something went wrong", f"{exc_type.__name__}: {exc}", details, user_error=False)

    sys.excepthook = hook


def app_icon() -> QIcon:
    """The app's icon, ``ui/icons/wmstudio.svg`` (a null icon where the file is missing: a window without
    an icon, not a failed start)."""
    from PySide6.QtGui import QIcon

    from wmstudio.resources import resource_path

    try:
        return QIcon(str(resource_path("icons", "wmstudio.svg", kind="ui")))
    except FileNotFoundError:
        return QIcon()


def share_gl_resources() -> None:
    """Every OpenGL context of the app shares its objects (Qt's AA_ShareOpenGLContexts; set before the
    QApplication exists). pyqtgraph compiles each shader program once and reuses its id in every
    context: without sharing, a second context (a 3D view made again, or its context re-created)
    draws with ids it does not have ("GLError 1281 invalid value" from glUseProgram)."""
    from PySide6.QtCore import QCoreApplication, Qt

    if QCoreApplication.instance() is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui import theme
    from wmstudio.gui.main_window import MainWindow

    share_gl_resources()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Watermark Studio")
    app.setOrganizationName("wmstudio")
    app.setWindowIcon(app_icon())
    settings = QSettings("wmstudio", "Watermark Studio")
    chosen = args.theme or str(settings.value("theme", "system"))
    settings.setValue("theme", chosen)
    mode = theme.apply(app, chosen)
    win = MainWindow(args.runs_dir, settings, mode, background_engine=True)  # torch loads after the window shows
    win.quits_app = True
    install_error_hook(win)
    if args.config:
        win.setup.load_config_file(args.config)
    for log in args.logs:
        win.open_log(log)  # read once the engine is loaded
    win.show()
    if args.demo:
        win.setup.load_demo_config()
        win.engine_ready.connect(win.start_run)
    code = app.exec()
    settings.sync()
    if nothing_left_to_finish():
        leave_now(code)
    return code


def nothing_left_to_finish() -> bool:
    """Whether the process may end without Python's own shutdown: no thread of ours still working (the
    window closes for good only once its jobs have stopped) and no Ray cluster this process started (Ray
    stops it at exit)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return False
    main = threading.main_thread()
    return not any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def leave_now(code: int) -> NoReturn:
    """Ends the process at once, its output flushed: tearing down the widgets, PyTorch and the CUDA
    libraries one object at a time took 3-5 s after the window had gone, the app still listed as running."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
