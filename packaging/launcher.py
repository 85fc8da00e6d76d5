"""The standalone app's one executable (PyInstaller's entry script).

``wmstudio ARGS`` is the command line, exactly as installed from the wheel; started through the
``wmstudio-gui`` link beside it, it is the desktop app. Three things only a frozen app needs:

* ``multiprocessing.freeze_support()``: the landscape's worker processes (``spawn``) start this
  executable again, and must become workers, not a second CLI;
* the process watchdog (``wmstudio.sweep.watchdog``) is started as ``sys.executable -S watchdog.py PID``:
  here that is this executable, so those arguments are routed to ``watch(PID)``;
* the ``cpu`` flavour (a ``FLAVOUR`` file in the bundle saying ``cpu``) lacks the CUDA libraries
  that PyTorch loads only on a GPU, so it hides the GPUs (``CUDA_VISIBLE_DEVICES=""``) and runs on
  the CPU even on a machine with one.

Ray is not bundled (its workers start a Python interpreter, which a frozen app does not have):
``wmstudio sweep`` says so in one error instead of a traceback.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path


def _bundle_dir() -> Path:
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent))


def flavour() -> str:
    try:
        return (_bundle_dir() / "FLAVOUR").read_text().strip() or "cuda"
    except OSError:
        return "cuda"


def main(argv: list[str]) -> int:
    if flavour() == "cpu":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    if len(argv) == 3 and argv[0] == "-S" and Path(argv[1]).stem == "watchdog":
        from wmstudio.sweep.watchdog import watch

        watch(int(argv[2]))
        return 0
    if Path(sys.argv[0]).name == "wmstudio-gui":
        from wmstudio.gui.app import main as gui_main

        return gui_main(argv)
    from wmstudio.cli import main as cli_main

    try:
        return cli_main(argv)
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        print("wmstudio: error: sweeps run on Ray, which the standalone app does not include; "
              "install the wheel (pip install wmstudio) to run them", file=sys.stderr)
        return 2


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main(sys.argv[1:]))
