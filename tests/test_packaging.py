"""The standalone app's parts that can be checked without building it (issue 13): the desktop entry and
AppStream metainfo pass the standard validators and agree with each other and the version, the icons
are the sizes they claim, the frozen app's entry script routes its arguments, and the cpu flavour
keeps exactly the CUDA libraries something links.

The build itself (PyInstaller, ~24 minutes and ~15 GB) is ``test_package.py``, deselected by default.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT

import wmstudio

PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / "desktop"
APP_ID = "io.github.wmstudio.WatermarkStudio"


def _load(name: str):  # noqa: ANN202 - a module from packaging/, which is not a package
    spec = importlib.util.spec_from_file_location(f"packaging_{name}", PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("tool", "args"), [("desktop-file-validate", []), ("appstreamcli", ["validate", "--no-net"])])
def test_desktop_entry_and_metainfo_pass_the_standard_validators(tool: str, args: list[str]) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/sysdeps.sh installs it as root)")
    target = DESKTOP / (f"{APP_ID}.desktop" if tool == "desktop-file-validate" else f"{APP_ID}.metainfo.xml")
    proc = subprocess.run([tool, *args, str(target)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in (proc.stdout + proc.stderr).lower().replace("errors: 0", "")


def test_desktop_entry_metainfo_icons_and_version_agree() -> None:
    entry = dict(line.split("=", 1) for line in (DESKTOP / f"{APP_ID}.desktop").read_text().splitlines() if "=" in line)
    assert entry["Icon"] == APP_ID and entry["Exec"].split()[0] == "wmstudio-gui"
    meta = ET.parse(DESKTOP / f"{APP_ID}.metainfo.xml").getroot()
    assert meta.findtext("id") == APP_ID
    assert meta.findtext("launchable") == f"{APP_ID}.desktop"
    assert meta.findtext("project_license") == "MIT"
    releases = [r.get("version") for r in meta.iter("release")]
    assert releases[0] == wmstudio.__version__, "the metainfo's newest release is not the package version"
    assert (DESKTOP / "icons" / f"{APP_ID}.svg").is_file()


def test_icon_pngs_are_the_sizes_their_folders_name() -> None:
    from PIL import Image

    folders = sorted((DESKTOP / "icons").glob("*x*"))
    assert {f.name for f in folders} >= {"16x16", "32x32", "48x48", "64x64", "128x128", "256x256"}
    for folder in folders:
        w, h = (int(v) for v in folder.name.split("x"))
        with Image.open(folder / f"{APP_ID}.png") as img:
            assert img.size == (w, h) and img.mode == "RGBA", folder


def test_launcher_refuses_a_sweep_without_ray_in_one_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys) -> None:
    launcher = _load("launcher")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ModuleNotFoundError, as in the app
    sweep = ROOT / "resources" / "examples" / "cifar10_sweep.toml"
    monkeypatch.setattr(sys, "argv", ["wmstudio"])
    code = launcher.main(["sweep", str(sweep), "--out", str(tmp_path / "sweep")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("wmstudio: error: sweeps run on Ray") and "Traceback" not in err


def test_launcher_cpu_flavour_hides_the_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    launcher = _load("launcher")
    (tmp_path / "FLAVOUR").write_text("cpu\n")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(sys, "argv", ["wmstudio"])
    assert launcher.flavour() == "cpu"
    assert launcher.main(["models"]) == 0
    assert "small_cnn" in capsys.readouterr().out
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    (tmp_path / "FLAVOUR").write_text("cuda\n")
    assert launcher.flavour() == "cuda"


def test_launcher_routes_the_watchdog_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = _load("launcher")
    seen: list[int] = []
    monkeypatch.setattr("wmstudio.sweep.watchdog.watch", seen.append)
    assert launcher.main(["-S", "/bundle/_internal/wmstudio/sweep/watchdog.pyc", "4242"]) == 0
    assert seen == [4242]


def test_cpu_flavour_drops_only_the_cuda_libraries_nothing_links(tmp_path: Path) -> None:
    libdir = Path("/usr/lib/x86_64-linux-gnu")
    png, z, bz2 = libdir / "libpng16.so.16", libdir / "libz.so.1", libdir / "libbz2.so.1.0"
    if not all(p.exists() for p in (png, z, bz2)) or shutil.which("objdump") is None:
        pytest.skip("needs objdump and the system's libpng16/libz/libbz2")
    app = tmp_path / "app"
    cuda = app / "_internal" / "nvidia" / "cu" / "lib"
    cuda.mkdir(parents=True)
    shutil.copy(png, app / "_internal" / png.name)  # stands for libtorch: it links libz
    shutil.copy(z, cuda / z.name)  # a linked CUDA library: stays
    shutil.copy(bz2, cuda / bz2.name)  # one nothing links (dlopen-ed on a GPU only): goes
    (app / "_internal" / "torch" / "lib").mkdir(parents=True)
    gpu_only = app / "_internal" / "torch" / "lib" / "libtorch_cuda_linalg.so"  # dlopen-ed on a GPU only: goes
    shutil.copy(png, gpu_only)
    shutil.copy("/bin/true", app / "wmstudio")
    assert _load("cpu_flavour").main(str(app)) == 0
    assert (cuda / z.name).exists() and (app / "_internal" / png.name).exists()
    assert not (cuda / bz2.name).exists() and not gpu_only.exists()

