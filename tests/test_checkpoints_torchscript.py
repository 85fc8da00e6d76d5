"""The TorchScript reader gives what ``torch.jit.load(f).state_dict()`` gives, without running the archive."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from wmstudio.models import build_model
from wmstudio.models.torchscript_reader import read_torchscript_tensors


def _save(module: nn.Module, path: Path, traced: bool, shape: tuple[int, ...]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(module.eval(), torch.zeros(shape)) if traced else torch.jit.script(module)
        scripted.save(str(path))
    return path


def _jit_state(path: Path) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(torch.jit.load(str(path)).state_dict())


@pytest.mark.parametrize(("name", "traced"), [("small_cnn", False), ("small_cnn", True), ("vit", False),
                                              ("torchvision:mobilenet_v3_small", False),
                                              ("torchvision:resnet18", True)])
def test_the_reader_matches_torch_jit_load(tmp_path, name: str, traced: bool) -> None:
    torch.manual_seed(0)
    c, s = (1, 8) if name == "small_cnn" else (3, 32)
    model = build_model(name, c, 10, s)
    path = _save(model, tmp_path / "m.pt", traced, (1, c, s, s))
    got, want = read_torchscript_tensors(path), _jit_state(path)
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) and got[k].dtype == want[k].dtype for k in want)


def test_shared_storages_and_non_contiguous_tensors(tmp_path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4, bias=False)
            self.b = nn.Linear(4, 4, bias=False)
            self.b.weight = self.a.weight  # one storage, two names
            self.register_buffer("t", torch.arange(12.0).view(3, 4).t())  # a transposed view

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x)) + self.t.sum()

    path = _save(Tied(), tmp_path / "tied.pt", False, (1, 4))
    got, want = read_torchscript_tensors(path), _jit_state(path)
    assert sorted(got) == sorted(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert torch.equal(got["t"], torch.arange(12.0).view(3, 4).t())
