"""Which engine code a process runs: a fingerprint of the engine's source, and pinning a process to the
source as it was when it loaded it.

A sweep's Ray workers live for the whole sweep and import the engine lazily; with an editable install
edited under a running sweep, one worker had held an old module and imported a new one (an ImportError
mid-run; a quieter change could have mixed two versions in one result). A worker now imports the whole
engine before its first run (:func:`pin_engine`), so later edits on disk cannot reach it, and a run is
refused when the code it loaded is not the code the sweep started with (``wmstudio.sweep.tasks``).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import threading
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
_lock = threading.Lock()
_pinned: str | None = None


def source_fingerprint(root: Path = _ROOT) -> str:
    """A short hash of the engine's Python source under ``root`` (the app's ``gui`` package left out: it
    never runs in a sweep), as the files are on disk now."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.py") if "gui" not in p.relative_to(root).parts):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def pin_engine() -> str:
    """Imports every engine module once in this process (not the app's ``gui``) and returns the fingerprint
    of the source it loaded; later calls return the same fingerprint, whatever the files on disk say by
    then. A module that cannot be imported here (an optional dependency missing) is left to import lazily."""
    global _pinned
    with _lock:
        if _pinned is None:
            for mod in pkgutil.walk_packages([str(_ROOT)], "wmstudio."):
                if mod.name.startswith("wmstudio.gui") or mod.name == "wmstudio.__main__":
                    continue
                try:
                    importlib.import_module(mod.name)
                except ImportError:
                    continue
            _pinned = source_fingerprint()
        return _pinned
