"""The standalone app, built and checked end to end (issue 13): ``packaging/build.sh`` (PyInstaller,
both flavours, archives), then ``packaging/check_bundle.sh`` on each archive (unpacked outside the
repository, clean environment: demo, config, inspect, landscape, the GUI under Xvfb with screenshots).

About 40 minutes (build 24, checks 6 each) and 15 GB of disk on the 2-core machine (see
packaging/README.md), so it is marked ``package`` and deselected unless asked for: ``pytest -m package tests/test_package.py``. Run it
before every release note.
"""

from __future__ import annotations

import platform
import subprocess

import pytest
from conftest import ROOT

import wmstudio

pytestmark = [pytest.mark.package, pytest.mark.timeout(3600)]


def _varied(png) -> bool:  # noqa: ANN001
    """A screenshot with a window in it, not a blank screen."""
    from PIL import Image, ImageStat

    with Image.open(png) as img:
        return max(ImageStat.Stat(img.convert("L")).stddev) > 10


def test_standalone_app_builds_and_runs_outside_the_repository(tmp_path) -> None:
    build = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh")], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    for flavour in ("cuda", "cpu"):
        name = f"wmstudio-{wmstudio.__version__}-linux-{platform.machine()}-{flavour}"
        archive = ROOT / "packaging" / "dist" / f"{name}.tar.gz"
        assert archive.is_file(), archive
        out = tmp_path / flavour
        check = subprocess.run(["bash", str(ROOT / "packaging" / "check_bundle.sh"), str(archive), str(out)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-4000:]
        assert f"check_bundle: OK ({name})" in check.stdout
        for shot in ("landscape_2d.png", "landscape_3d.png"):
            assert _varied(out / shot), out / shot
