"""A real run on the CIFAR-10 JPEGs in ../shared/data, through the ImageFolder archive loader."""

from __future__ import annotations

import pytest
from conftest import CIFAR

from wmstudio.config_io import load_config
from wmstudio.data import load_dataset
from wmstudio.pipeline import run_experiment
from wmstudio.runlog_reader import RunLogReader

pytestmark = pytest.mark.skipif(not CIFAR.is_file(), reason=f"CIFAR-10 archive not found at {CIFAR} (see shared/data/README.md)")


def test_cifar10_archive_loads_every_image() -> None:
    d = load_dataset("imagefolder", CIFAR)
    assert d.shape == (3, 32, 32) and len(d.train) == 50_000 and len(d.test) == 10_000
    assert d.train.classes[:3] == ["airplane", "automobile", "bird"]
    assert d.train.labels.bincount().tolist() == [5000] * 10


def test_cifar10_run_through_the_imagefolder_loader(tmp_path) -> None:
    cfg = load_config(data={
        "run": {"name": "cifar smoke", "threads": 2, "eval_batch_size": 500},
        "data": {"dataset": "imagefolder", "root": str(CIFAR), "owner_size": 3000, "attacker_size": 1000, "test_size": 1000},
        "model": {"arch": "resnet20"},
        "trigger": {"scheme": "content", "size": 50},
        "embed": {"epochs": 3, "lr": 0.002, "optimizer": "adam", "weight_decay": 0.0},
        "finetune": {"epochs": 1, "lr": 0.01},
        "restore": {"epochs": 1, "lr": 0.01},
    })
    out = tmp_path / "cifar.h5"
    assert run_experiment(cfg, out).status == "finished"
    r = RunLogReader(out)
    assert r.data_info()["classes"][-1] == "truck"
    embed = r.stage("embed")
    assert embed.final("test_acc") > 0.25  # well above chance (0.1) after 3 short epochs
    assert embed.final("trigger_acc") >= 0.9
    assert r.trigger()["images"].shape == (50, 3, 32, 32)
    assert [s.status for s in r.stages()] == ["finished"] * 3
