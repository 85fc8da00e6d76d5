"""Pretrained models on another task: a torchvision model from a local weights file, resized inputs, new head.

The weights are made in the test (a fresh torchvision model with ImageNet's 1000 classes), so nothing
is downloaded. shufflenet_v2_x0_5 is the torchvision model with a Linear head that trains fastest
on a CPU at 32x32 (see the report of the change that added this test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision.models as tvm

from tests.conftest import quick_config
from wmstudio.config_io import load_config
from wmstudio.errors import CheckpointError, ConfigError
from wmstudio.events import StageFinished, Warning
from wmstudio.model_build import build_from_config
from wmstudio.models.pretrained import load_pretrained
from wmstudio.pipeline import run_experiment
from wmstudio.runlog_reader import RunLogReader

ARCH = "shufflenet_v2_x0_5"


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tv") / f"{ARCH}_imagenet.pth"
    torch.save(tvm.get_model(ARCH, weights=None).state_dict(), path)  # 1000 classes, torchvision's key names
    return path


def _transfer_config(weights: Path, **model: object) -> dict:
    return quick_config(
        data={"image_size": 32, "channels": 3, "normalize": "imagenet", "owner_size": 128, "test_size": 64,
              "augment": False},
        model={"arch": f"torchvision:{ARCH}", "checkpoint": str(weights), "reinit_head": True, **model},
        trigger={"scheme": "content", "size": 16},
        embed={"epochs": 1, "batch_size": 64, "trigger_fraction": 0.2},
        finetune={"enabled": False}, restore={"enabled": False})


def test_imagenet_head_is_replaced_and_the_rest_loaded(imagenet_weights: Path) -> None:
    cfg = load_config(data=_transfer_config(imagenet_weights))
    model = build_from_config(cfg, 3, 10, 32)
    fresh_fc = model.fc.weight.detach().clone()
    result = load_pretrained(model, imagenet_weights, reinit_head=True)
    assert result.head is not None and result.head.message() == "head fc re-initialised: 1000 -> 10 classes"
    sd = torch.load(imagenet_weights, weights_only=True)
    assert torch.equal(model.conv1[0].weight, sd["conv1.0.weight"])
    assert torch.equal(model.stage4[0].branch1[0].weight, sd["stage4.0.branch1.0.weight"])
    assert model.fc.out_features == 10 and torch.equal(model.fc.weight, fresh_fc)


def test_head_mismatch_is_refused_when_asked_and_num_classes_keeps_it(imagenet_weights: Path) -> None:
    cfg = load_config(data=_transfer_config(imagenet_weights, reinit_head=False))
    with pytest.raises(CheckpointError, match=r"fc\.weight"):
        load_pretrained(build_from_config(cfg, 3, 10, 32), imagenet_weights, reinit_head=False)
    with pytest.raises(CheckpointError, match=r"model\.reinit_head = true"):  # the default refuses, with the way out
        load_pretrained(build_from_config(cfg, 3, 10, 32), imagenet_weights)
    keep = load_config(data=_transfer_config(imagenet_weights, num_classes=1000))
    model = build_from_config(keep, 3, 10, 32)
    assert load_pretrained(model, imagenet_weights).head is None and model.fc.out_features == 1000
    too_few = load_config(data=_transfer_config(imagenet_weights, num_classes=5))
    with pytest.raises(ConfigError, match=r"^model\.num_classes: 5 outputs, but the data set has 10 classes"):
        build_from_config(too_few, 3, 10, 32)


def test_watermark_embeds_into_a_transferred_torchvision_model(imagenet_weights: Path, tmp_path: Path) -> None:
    events: list = []
    out = tmp_path / "transfer.h5"
    result = run_experiment(load_config(data=_transfer_config(imagenet_weights)), out, events.append)
    assert result.status == "finished"
    assert [e.message for e in events if isinstance(e, Warning)] == ["head fc re-initialised: 1000 -> 10 classes"]
    assert any(isinstance(e, StageFinished) and e.stage == "embed" and e.status == "finished" for e in events)
    r = RunLogReader(out)
    info = r.data_info()
    assert info["shape"] == [3, 32, 32] and info["head"] == "head fc re-initialised: 1000 -> 10 classes"
    assert info["normalize"] == "imagenet"
    assert r.weights("embed")["fc.weight"].shape == (10, 1024)
    assert r.trigger()["images"].shape[1:] == (3, 32, 32)
    assert r.stage("embed").final("trigger_acc") >= 0.0 and len(r.stage("embed").eval["test_acc"]) >= 2
