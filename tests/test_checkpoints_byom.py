"""Bring your own model: old-format checkpoints, mismatch reports, checks before data, inspect naming."""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import quick_config
from wmstudio.config_io import load_config
from wmstudio.errors import CheckpointError
from wmstudio.models import build_model, load_checkpoint

USER_MODEL = '''
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """A small CNN named like the public CIFAR ResNet files: the head is `linear`."""

    def __init__(self, in_channels=1, num_classes=10, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.linear = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def make(in_channels, num_classes, width=8):
    return Net(in_channels, num_classes, width)
'''


def user_model_file(folder: Path) -> Path:
    path = folder / "mine.py"
    path.write_text(USER_MODEL)
    return path


def old_format_checkpoint(model: nn.Module, path: Path) -> Path:
    """What an old PyTorch (before 0.4.1) saved from a DataParallel model: ``{'state_dict': ...}`` with
    ``module.`` prefixes, BatchNorm at module version 1 and no ``num_batches_tracked``."""
    sd = nn.DataParallel(model).state_dict()
    old: OrderedDict[str, torch.Tensor] = OrderedDict((k, v) for k, v in sd.items() if "num_batches_tracked" not in k)
    meta = copy.deepcopy(sd._metadata)  # type: ignore[attr-defined]
    for key in meta:
        if key.endswith(("bn1", "bn2")):
            meta[key]["version"] = 1
    old._metadata = meta  # type: ignore[attr-defined]
    torch.save({"epoch": 200, "best_prec1": 91.8, "state_dict": old}, path, _use_new_zipfile_serialization=False)
    return path


def _trained_like(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.state_dict().values():
        if p.is_floating_point():
            p.copy_(torch.randn_like(p))
    return model


def test_an_old_format_batchnorm_checkpoint_loads_under_strict(tmp_path) -> None:
    file = user_model_file(tmp_path)
    src = _trained_like(build_model("", 1, 10, 8, file=str(file), factory="make"), 1)
    path = old_format_checkpoint(src, tmp_path / "resnet20.th")
    dst = build_model("", 1, 10, 8, file=str(file), factory="make")
    assert load_checkpoint(dst, path, strict=True) == []
    for k, v in src.state_dict().items():
        if "num_batches_tracked" not in k:
            assert torch.equal(dst.state_dict()[k], v), k
    # PyTorch itself accepts the same tensors under strict=True (it fills num_batches_tracked)
    raw = torch.load(path, weights_only=True)["state_dict"]
    stripped = OrderedDict((k[len("module."):], v) for k, v in raw.items())
    stripped._metadata = OrderedDict((k[len("module."):] if k.startswith("module.") else "", v)  # type: ignore[attr-defined]
                                     for k, v in raw._metadata.items())
    build_model("", 1, 10, 8, file=str(file), factory="make").load_state_dict(stripped, strict=True)


def test_a_new_format_checkpoint_missing_num_batches_tracked_is_still_a_mismatch(tmp_path) -> None:
    sd = build_model("small_cnn", 1, 10, 8).state_dict()  # BatchNorm at version 2
    missing = next(k for k in sd if k.endswith("num_batches_tracked"))
    del sd[missing]
    torch.save(sd, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=rf"missing from the checkpoint \(1\): {missing}"):
        load_checkpoint(build_model("small_cnn", 1, 10, 8), tmp_path / "new.pt")


def test_mismatches_are_a_table_with_the_likely_cause(tmp_path) -> None:
    torch.save(build_model("resnet20", 3, 10, 32, {"width": 8}).state_dict(), tmp_path / "narrow.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build_model("resnet20", 3, 10, 32), tmp_path / "narrow.pt")
    text = str(err.value)
    assert "narrow.pt: does not fit the model (CifarResNet):" in text
    assert "shape differs (" in text
    assert re.search(r"\n    conv1.weight +checkpoint \(8, 3, 3, 3\) +model \(16, 3, 3, 3\)\n", text)
    assert "different width" in text
    torch.save(build_model("resnet20", 1, 10, 32).state_dict(), tmp_path / "grey.pt")
    with pytest.raises(CheckpointError, match=r"(?s)conv1.weight +checkpoint \(16, 1, 3, 3\) +model \(16, 3, 3, 3\)"
                                              r".*takes 1-channel images and this data set has 3 channels"):
        load_checkpoint(build_model("resnet20", 3, 10, 32), tmp_path / "grey.pt")
    torch.save(build_model("resnet32", 3, 10, 32).state_dict(), tmp_path / "deeper.pt")
    with pytest.raises(CheckpointError, match=r"(?s)not in the model \(\d+\): layer1\.3\..*different depth"):
        load_checkpoint(build_model("resnet20", 3, 10, 32), tmp_path / "deeper.pt")
    file = user_model_file(tmp_path)
    torch.save(build_model("", 1, 10, 8, {"width": 8}, str(file), "make").state_dict(), tmp_path / "named.pt")
    small = nn.Module()
    small.conv1, small.bn1 = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
    small.conv2, small.bn2 = nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
    small.fc = nn.Linear(16, 10)
    with pytest.raises(CheckpointError, match=r"(?s)same tensors under other names \(linear.weight -> fc.weight"):
        load_checkpoint(small, tmp_path / "named.pt")
    notes = load_checkpoint(small, tmp_path / "named.pt", strict=False)
    assert len(notes) == 1 and "missing from the checkpoint (2): fc.weight, fc.bias" in notes[0]


def _image_folder(root: Path, classes: int, size: int = 8) -> Path:
    from conftest import image_folder

    return image_folder(root, classes, size=size)


@pytest.mark.parametrize("dataset", ["digits", "imagefolder"])
def test_the_checkpoint_is_checked_before_any_data_is_decoded(tmp_path, monkeypatch, dataset: str) -> None:
    import wmstudio.assembly as assembly
    import wmstudio.pipeline as pipeline
    from wmstudio.preflight import probe_dims

    data = {"dataset": dataset}
    channels = 1
    if dataset == "imagefolder":
        data["root"] = str(_image_folder(tmp_path / "imgs", classes=3))
        channels = 3
    dims = probe_dims(load_config(data={"data": data}).data)
    assert dims is not None and (dims.channels, dims.num_classes, dims.size) == (channels, 10 if dataset == "digits" else 3, 8)
    torch.save(build_model("small_cnn", channels, 100, 8).state_dict(), tmp_path / "c100.pt")
    cfg = load_config(data=quick_config(data=data, model={"checkpoint": str(tmp_path / "c100.pt")}))

    def no_data(*_a, **_k):
        raise AssertionError("data was decoded before the checkpoint was checked")

    monkeypatch.setattr(assembly, "load_dataset", no_data)
    with pytest.raises(CheckpointError, match=r"(?s)fc.weight +checkpoint \(100, 64\).*head \(fc\) is for 100 classes"):
        pipeline.run_experiment(cfg, tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


def test_imagefolder_dims_come_from_the_cache_once_decoded(tmp_path) -> None:
    from wmstudio.data.imagefolder import load_imagefolder
    from wmstudio.preflight import _cached_dims, probe_dims

    root = _image_folder(tmp_path / "imgs", classes=4, size=8)
    d = load_config(data={"data": {"dataset": "imagefolder", "root": str(root)}}).data
    assert _cached_dims(root, d) is None
    listed = probe_dims(d)
    assert listed is not None and (listed.channels, listed.num_classes, listed.size, listed.exact_size) == (3, 4, 8, False)
    load_imagefolder(root)
    cached = probe_dims(d)
    assert cached is not None and (cached.channels, cached.num_classes, cached.size, cached.exact_size) == (3, 4, 8, True)


def test_inspect_names_the_model_file_factory_and_checkpoint(tmp_path) -> None:
    from wmstudio.inspect_log import summarize
    from wmstudio.pipeline import run_experiment

    file = user_model_file(tmp_path)
    src = _trained_like(build_model("", 1, 10, 8, file=str(file), factory="make"), 2)
    ckpt = old_format_checkpoint(src, tmp_path / "old.th")
    cfg = load_config(data=quick_config(model={"file": str(file), "factory": "make", "checkpoint": str(ckpt)},
                                        embed={"epochs": 1}, finetune={"enabled": False}, restore={"enabled": False}))
    run_experiment(cfg, tmp_path / "run.h5")
    text = summarize(str(tmp_path / "run.h5"))
    assert f"model     {file.resolve()}:make (your model file)" in text
    assert f"checkpoint {ckpt} (pickled state_dict (weights_only), 12 tensors, sha256 " in text


DOCS = Path(__file__).resolve().parents[1] / "docs" / "byom"


def test_the_worked_example_of_the_docs(tmp_path, monkeypatch) -> None:
    """docs/bring_your_own_model.md: its model file takes an old-format public-style ResNet-20 checkpoint
    under strict loading, and its config runs (on a tiny ImageFolder standing in for CIFAR-10)."""
    from wmstudio.config_io import read_config_data
    from wmstudio.inspect_log import summarize
    from wmstudio.pipeline import run_experiment

    file = DOCS / "cifar_resnet.py"
    src = _trained_like(build_model("", 3, 10, 32, file=str(file), factory="resnet20"), 3)
    ckpt = old_format_checkpoint(src, tmp_path / "resnet20-public.th")
    raw = torch.load(ckpt, weights_only=True)["state_dict"]
    assert sum(k.endswith("num_batches_tracked") for k in src.state_dict()) == 19
    assert all(k.startswith("module.") and "num_batches_tracked" not in k for k in raw)
    model = build_model("", 3, 10, 32, file=str(file), factory="resnet20")
    assert load_checkpoint(model, ckpt, strict=True) == []
    with pytest.raises(CheckpointError, match=r"linear.weight -> fc.weight"):
        load_checkpoint(build_model("resnet20", 3, 10, 32), ckpt)

    data = read_config_data(DOCS / "byom.toml")
    assert data["data"]["normalize"] == "imagenet"
    data["data"].update(root=str(_image_folder(tmp_path / "cifar", classes=10, size=32)), owner_size=0,
                        attacker_size=10, test_size=0)
    data["model"].update(file=str(file), checkpoint=str(ckpt))
    data["trigger"]["size"] = 10
    for stage in ("embed", "finetune", "restore"):
        data[stage].update(epochs=1, batch_size=16)
    data["run"]["threads"] = 1
    run_experiment(load_config(data=data), tmp_path / "byom.h5")
    from wmstudio.runlog_reader import RunLogReader

    info = RunLogReader(tmp_path / "byom.h5").data_info()
    assert info["normalize"] == "imagenet" and info["mean"] == pytest.approx([0.485, 0.456, 0.406])
    text = summarize(str(tmp_path / "byom.h5"))
    assert f"{file}:resnet20 (your model file)" in text and f"checkpoint {ckpt} (pickled state_dict" in text
