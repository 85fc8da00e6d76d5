"""The engine never imports Qt: only wmstudio/gui/ may."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt[56]|pyqtgraph|shiboken6)\b", re.MULTILINE)


def test_no_qt_imports_outside_gui() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "wmstudio").rglob("*.py")
                 if "gui" not in p.relative_to(ROOT / "wmstudio").parts and QT_IMPORT.search(p.read_text())]
    assert offenders == []


def test_engine_imports_and_runs_without_qt_loaded() -> None:
    code = (
        "import sys, importlib, pkgutil, wmstudio\n"
        "for m in pkgutil.walk_packages(wmstudio.__path__, 'wmstudio.'):\n"
        "    if '.gui' not in m.name and not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'PyQt5', 'PyQt6')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
