from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CIFAR = SHARED / "cifar10-jpg.tar.gz"
MNIST = SHARED / "mnist"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded-image caches go to a per-session temp folder, never the user's home."""
    monkeypatch.setenv("WMSTUDIO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


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
