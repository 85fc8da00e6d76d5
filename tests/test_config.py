from __future__ import annotations

import sys

import pytest

from wmstudio.config import ExperimentConfig
from wmstudio.config_io import load_config, to_toml
from wmstudio.errors import ConfigError
from wmstudio.resources import example_config

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def test_example_is_complete_commented_and_round_trips() -> None:
    text = to_toml(ExperimentConfig(), comments=True)
    assert "# the watermark's trigger set" in text
    assert "variant = \"FTAL\"" in text and "FTLL" in text  # choices listed in the comment
    assert load_config(data=tomllib.loads(text)) == ExperimentConfig()


def test_demo_config_is_valid() -> None:
    cfg = load_config(example_config("demo"))
    assert cfg.data.dataset == "digits" and cfg.trigger.scheme == "content"


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"finetune": {"lrr": 0.1}}, "finetune.lrr", "did you mean 'lr'"),
    ({"finetune": {"lr": -1}}, "finetune.lr", "> 0"),
    ({"embed": {"epochs": "ten"}}, "embed.epochs", "whole number"),
    ({"trigger": {"scheme": "magic"}}, "trigger.scheme", "one of abstract"),
    ({"data": {"augment": 1}}, "data.augment", "true or false"),
    ({"trigger": {"scheme": "adversarial"}}, "embed.clean_epochs", "clean model"),
    ({"data": {"dataset": "imagefolder"}}, "data.root", "folder"),
])
def test_bad_values_name_the_field(data: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(data=data)
    assert info.value.field == field
    assert words in str(info.value)


def test_overrides_are_typed_and_validated(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(to_toml(ExperimentConfig()))
    cfg = load_config(path, ["finetune.lr=0.2", "trigger.scheme=noise", "restore.stop_on_plateau=true", "run.name=my run"])
    assert cfg.finetune.lr == 0.2 and cfg.trigger.scheme == "noise"
    assert cfg.restore.stop_on_plateau is True and cfg.run.name == "my run"
    with pytest.raises(ConfigError, match=r"embed\.epochs.*c\.toml"):
        load_config(path, ["embed.epochs=-3"])


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname=")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        load_config(bad)


def test_json_configs_are_read(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"embed": {"epochs": 3}}')
    assert load_config(path).embed.epochs == 3
