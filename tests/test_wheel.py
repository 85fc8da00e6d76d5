"""The sdist and wheel (issue 13): what ``python -m build`` makes carries ui/, resources/ and an SPDX
license, and the wheel, installed into a fresh venv away from the source tree, runs ``wmstudio demo``.

The builds call setuptools' PEP 517 hooks directly on a copy of the tree (sdist first, then the wheel
from the unpacked sdist: what ``python -m build --no-isolation`` does), so no network is needed. The
fresh venv does not reinstall PyTorch (2 minutes and 4 GB): it is made without pip, the wheel goes in
with ``pip --python VENV install --no-deps``, and one ``.pth`` line puts this interpreter's
site-packages (torch, h5py, Qt, ...) *after* the venv's own. A plain path in a ``.pth`` is not a site
directory, so the editable install that lives there (its own ``.pth`` hook) stays inert: the
``wmstudio`` the venv imports is the wheel's, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

import wmstudio

VERSION = wmstudio.__version__
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "wmstudio", "ui", "resources")


def _hook(name: str, src: Path, out: Path) -> tuple[Path, str]:
    """Runs one PEP 517 build hook in ``src`` in a fresh interpreter; returns the artefact and the build's output."""
    code = f"from setuptools import build_meta as b; print(b.{name}({str(out)!r}))"
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=src, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / proc.stdout.strip().splitlines()[-1], proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("wheel")
    tree = base / "tree"
    tree.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, tree / name)
    dist = base / "dist"
    sdist, sdist_log = _hook("build_sdist", tree, dist)
    with tarfile.open(sdist) as tf:
        tf.extractall(base / "unpacked", filter="data")
    wheel, wheel_log = _hook("build_wheel", base / "unpacked" / f"wmstudio-{VERSION}", dist)
    return {"base": base, "sdist": sdist, "wheel": wheel, "log": sdist_log + wheel_log}


def test_build_declares_an_spdx_license_without_deprecation_warnings(built: dict) -> None:
    assert "SetuptoolsDeprecationWarning" not in built["log"], built["log"]
    with zipfile.ZipFile(built["wheel"]) as zf:
        meta = zf.read(f"wmstudio-{VERSION}.dist-info/METADATA").decode()
        names = zf.namelist()
    assert "License-Expression: MIT" in meta.splitlines()
    assert f"wmstudio-{VERSION}.dist-info/licenses/LICENSE" in names


def test_sdist_and_wheel_carry_ui_and_resources(built: dict) -> None:
    expected = ["ui/icons/wmstudio.svg", "resources/examples/demo.toml", "resources/examples/paper_cpu_twin.toml"]
    with tarfile.open(built["sdist"]) as tf:
        members = set(tf.getnames())
    for rel in [*expected, "LICENSE"]:
        assert f"wmstudio-{VERSION}/{rel}" in members, rel
    with zipfile.ZipFile(built["wheel"]) as zf:
        names = set(zf.namelist())
    for rel in expected:
        assert f"wmstudio-{VERSION}.data/data/share/wmstudio/{rel}" in names, rel
    assert "wmstudio/gui/main_window.py" in names and "wmstudio/py.typed" in names


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo_outside_the_source_tree(built: dict) -> None:
    import torch

    base: Path = built["base"]
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_wmstudio_test_deps.pth").write_text(f"{Path(torch.__file__).parents[1]}\n")
    # without PYTHONPATH: pip would take a source tree on it for wmstudio already installed
    pip_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                    "--no-index", str(built["wheel"])], check=True, timeout=300, env=pip_env)
    work = base / "elsewhere"
    (work / "home").mkdir(parents=True)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(work / "home"), "OMP_NUM_THREADS": "1",
           "LANG": "C.UTF-8", "WMSTUDIO_CACHE": str(work / "cache")}

    def run(*args: str) -> str:
        proc = subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    where = run(str(py), "-c", "import wmstudio, wmstudio.resources as r; print(wmstudio.__file__); "
                "print(r.example_config('demo')); print(r.resource_path('icons', 'wmstudio.svg', kind='ui'))").split()
    for path in where:
        assert Path(path).is_relative_to(venv), where
        assert not Path(path).is_relative_to(ROOT), where
    out = run(str(venv / "bin" / "wmstudio"), "demo", "--quiet")
    assert out == "" and (work / "runs" / "demo.h5").is_file()
    summary = run(str(venv / "bin" / "wmstudio"), "inspect", "runs/demo.h5")
    for stage in ("embed", "finetune", "restore"):
        assert f"\n{stage:<10}finished" in summary, summary
    assert run(str(venv / "bin" / "wmstudio"), "--version").strip() == f"wmstudio {VERSION}"
    assert os.access(venv / "bin" / "wmstudio-gui", os.X_OK)
