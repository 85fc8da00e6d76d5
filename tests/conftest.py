from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CIFAR = SHARED / "cifar10-jpg.tar.gz"
MNIST = SHARED / "mnist"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config: pytest.Config) -> None:
    """As the app does before its QApplication exists: OpenGL contexts share their objects (each test's
    3D view has its own context; pyqtgraph reuses its shader programs in all of them)."""
    from wmstudio.gui.app import share_gl_resources

    share_gl_resources()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``package`` (the standalone app's build, ~40 minutes) run only when ``-m`` names them."""
    if "package" in (config.getoption("markexpr") or ""):
        return
    skipped = [item for item in items if item.get_closest_marker("package")]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not item.get_closest_marker("package")]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded-image caches go to a per-session temp folder, never the user's home."""
    monkeypatch.setenv("WMSTUDIO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture()
def one_thread():  # noqa: ANN201
    """Tiny tensors: one thread is fastest (and fair to a busy machine); the count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def image_folder(root: Path, classes: int, train: int = 4, test: int = 2, size: int = 8) -> Path:
    """A tiny ImageFolder tree of random RGB PNGs: ``train/<class>/`` and ``test/<class>/``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def quick_config(**sections: dict) -> dict:
    """A small digits experiment (seconds on a CPU), with per-section overrides."""
    data = {
        "run": {"threads": 2},
        "data": {"flip": False},
        "embed": {"epochs": 12},
        "finetune": {"epochs": 2, "lr": 0.02},
        "restore": {"epochs": 2, "lr": 0.003},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in demo, run once per test session (a few seconds); copy it before writing to it."""
    from wmstudio.config_io import load_config
    from wmstudio.pipeline import run_experiment
    from wmstudio.resources import example_config

    out = tmp_path_factory.mktemp("demo_run") / "demo.h5"
    run_experiment(load_config(example_config("demo"), ["run.threads=2"]), out)
    return out


@pytest.fixture()
def demo_copy(demo_run: Path, tmp_path: Path) -> Path:
    """A private copy of the demo's run log."""
    import shutil

    return Path(shutil.copy(demo_run, tmp_path / "demo.h5"))


def eval_rel(cpu_rel: float) -> float:
    """Relative tolerance for comparing two evaluations of the same model done by different code paths
    (folded BatchNorm, channels-last, another batch size). On the CPU they agree to ``cpu_rel``; on a
    GPU cuDNN convolutions run in TF32 by default and may choose other algorithms, so agreement is
    about 1e-3."""
    import torch

    return max(cpu_rel, 2e-3) if torch.cuda.is_available() else cpu_rel
