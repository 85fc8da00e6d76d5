"""Shipped base models: the recipe trains the clean stage, the card records it, ``base:NAME`` loads it
after checking the checksum, and a retrain gives the same weights bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wmstudio import base_models
from wmstudio.cli import main
from wmstudio.config_io import load_config
from wmstudio.errors import CheckpointError, ConfigError

RECIPE = """
[run]
name = "tiny base"
seed = 3
threads = 1
record_trajectory = false

[data]
dataset = "digits"
flip = false
owner_size = 500
test_size = 200

[model]
arch = "small_cnn"
options = { width = 8 }

[embed]
clean_epochs = 6
batch_size = 64
lr = 0.05
scheduler = "onecycle"
label_smoothing = 0.1
"""


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base_models")
    (folder / "tiny.toml").write_text(RECIPE)
    assert main(["base-model", "train", str(folder / "tiny.toml"), "--quiet"]) == 0
    return folder


def test_train_writes_weights_and_a_card_that_describes_them(shipped: Path) -> None:
    card = json.loads((shipped / "tiny.json").read_text())
    assert card["weights"] == "tiny.safetensors"
    assert card["sha256"] == base_models.sha256_file(shipped / "tiny.safetensors")
    assert card["tensors_sha256"] == base_models.tensors_hash(shipped / "tiny.safetensors")
    assert card["recipe_sha256"] == base_models.sha256_file(shipped / "tiny.toml")
    assert card["split"]["owner"] == 500 and card["split"]["test"] == 200
    assert len(card["split"]["owner_sha256"]) == 64
    assert 0.3 < card["test_acc"] <= 1.0  # six epochs on 500 digits learn something
    assert card["epochs"] == 6 and card["training"]["threads"] == 1 and card["training"]["seconds"] >= 0
    assert card["versions"]["torch"]


def test_base_prefix_resolves_after_checking_the_checksum(shipped: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WMSTUDIO_BASE_MODELS", str(shipped))
    assert main(["base-model", "list"]) == 0
    assert "base:tiny" in capsys.readouterr().out
    cfg = load_config(None, ["model.checkpoint=base:tiny", "model.arch=small_cnn", 'model.options={"width"=8}'])
    assert Path(cfg.model.checkpoint) == shipped / "tiny.safetensors"
    with pytest.raises(ConfigError, match="no shipped base model 'nope'.*base:tiny"):
        load_config(None, ["model.checkpoint=base:nope"])
    with pytest.raises(ConfigError, match="expected base:<name>"):
        load_config(None, ["model.checkpoint=base:../tiny"])


def test_a_damaged_base_model_is_refused(shipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "bm"
    copy.mkdir()
    for p in shipped.glob("tiny.*"):
        (copy / p.name).write_bytes(p.read_bytes())
    data = bytearray((copy / "tiny.safetensors").read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    (copy / "tiny.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("WMSTUDIO_BASE_MODELS", str(copy))
    with pytest.raises(CheckpointError, match="SHA-256 .* differs from the card"):
        load_config(None, ["model.checkpoint=base:tiny"])


def test_embedding_starts_from_the_base_model(shipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog_reader import RunLogReader

    monkeypatch.setenv("WMSTUDIO_BASE_MODELS", str(shipped))
    cfg = load_config(shipped / "tiny.toml", ["model.checkpoint=base:tiny", "embed.clean_epochs=0", "embed.epochs=1",
                                              "trigger.size=20", "trigger.label_mode=random"])
    run_experiment(cfg, tmp_path / "embed.h5", stages=["embed"])
    rec = RunLogReader(tmp_path / "embed.h5").stage("embed")
    card = base_models.card("tiny")
    assert rec.eval["test_acc"][0] == pytest.approx(card["test_acc"], abs=1e-6)  # the embed starts at the base


def test_a_retrain_gives_the_same_weights_bit_for_bit(shipped: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WMSTUDIO_BASE_MODELS", str(shipped))
    assert main(["base-model", "train", str(shipped / "tiny.toml"), "--check", "--quiet"]) == 0
    assert "identical, bit for bit" in capsys.readouterr().out
    assert main(["base-model", "train", str(shipped / "tiny.toml"), "--check", "--quiet", "--set", "run.seed=4"]) == 1
    assert "DIFFERENT weights" in capsys.readouterr().out


def test_a_recipe_without_clean_epochs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(RECIPE.replace("clean_epochs = 6", "clean_epochs = 0"))
    assert main(["base-model", "train", str(tmp_path / "r.toml"), "--quiet"]) == 2
