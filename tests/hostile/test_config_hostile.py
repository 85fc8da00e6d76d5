"""Config files, overrides, model options and landscape settings a hostile user could give."""

from __future__ import annotations

import hashlib
import json

import pytest

from wmstudio.cli import main
from wmstudio.config import ExperimentConfig
from wmstudio.config_io import load_config, to_toml
from wmstudio.errors import ConfigError, RunLogError


def _check(capsys: pytest.CaptureFixture[str], path, *sets: str) -> str:
    """``wmstudio config --check`` must fail with one clear error line and no traceback."""
    argv = ["config", "--check", str(path)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.startswith("wmstudio: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize(("toml", "field", "words"), [
    ("[finetune]\nlr = nan", "finetune.lr", "finite"),
    ("[finetune]\nlr = inf", "finetune.lr", "finite"),
    ("[embed]\nlr = -inf", "embed.lr", "finite"),
    ("[embed]\nweight_decay = nan", "embed.weight_decay", "finite"),
    ("[finetune]\nlr = 1e308", "finetune.lr", "diverge"),
    ("[embed]\nepochs = 1e23", "embed.epochs", "whole number"),
    ("[embed]\nepochs = 10000000", "embed.epochs", "would not finish"),
    ("[embed]\nbatch_size = 1e8", "embed.batch_size", "held on the device"),
    ("[run]\neval_batch_size = 100000000", "run.eval_batch_size", "held on the device"),
    ("[run]\nthreads = 100000", "run.threads", "cores"),
    ("[trigger]\nsize = 1e8", "trigger.size", "held in memory"),
    ("[data]\nimage_size = 100000", "data.image_size", "held in memory"),
    ("[run]\nseed = 100000000000000000000", "run.seed", "<= 2147483647"),
    ("[embed]\napp_eps = 1e300", "embed.app_eps", "overflows"),
    ("[embed]\nrowback_groups = 3", "embed.rowback_groups", "list of strings"),
    ("[model]\noptions = { width = -4 }", "model.options.width", ">= 1"),
    ("[model]\noptions = { width = 100000 }", "model.options.width", "square of the width"),
    ("[model]\noptions = { widht = 8 }", "model.options.widht", "its options: width"),
    ("[model]\narch = \"vit\"\noptions = { heads = 5 }", "model.options.heads", "multiple of heads"),
    ("[model]\narch = \"vit\"\noptions = { dropout = 1.5 }", "model.options.dropout", "< 1"),
    ("[extract]\narch = \"resnet20\"\noptions = { width = 0 }", "extract.options.width", ">= 1"),
    ("[model]\narch = \"vit\"\noptions = { dim = 4096, depth = 64 }", "model.options", "at most 300M"),
])
def test_config_check_refuses_bad_numbers_naming_the_field(tmp_path, capsys, toml: str, field: str,
                                                            words: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    err = _check(capsys, path)
    assert f"{field}: " in err and words in err and "c.toml" in err


def test_json_nan_and_infinity_are_refused(tmp_path, capsys) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"finetune": {"lr": NaN}}')
    assert "finetune.lr: expected a finite number, got nan" in _check(capsys, path)
    path.write_text('{"embed": {"lr": Infinity}}')
    assert "embed.lr: expected a finite number, got inf" in _check(capsys, path)


def test_non_utf8_config_names_the_file_and_line(tmp_path, capsys) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[run]\nname = "caf\xe9"\n')
    err = _check(capsys, path)
    assert "latin1.toml is not a UTF-8 text file" in err and "line 2" in err


def test_invalid_toml_and_json_name_the_file_and_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nseed = 1\nname = = 2\n")
    err = _check(capsys, bad)
    assert "bad.toml is not valid TOML" in err and "line 3" in err
    js = tmp_path / "bad.json"
    js.write_text('{"run": {"seed": 1,}}')
    err = _check(capsys, js)
    assert "bad.json is not valid JSON" in err and "line 1" in err


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "3"])
def test_json_config_that_is_not_a_table_names_the_file(tmp_path, capsys, text: str) -> None:
    path = tmp_path / "list.json"
    path.write_text(text)
    assert "list.json: expected a JSON table of sections" in _check(capsys, path)


def test_deeply_nested_json_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert "deep.json" in _check(capsys, path)


def test_a_config_file_that_is_a_folder_or_huge_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "dir.toml").mkdir()
    assert "dir.toml" in _check(capsys, tmp_path / "dir.toml")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (11 * 2**20))
    assert "too large for a config file" in _check(capsys, big)


@pytest.mark.parametrize("override", ["=3", "foo", " = 3", ".lr=3", "finetune..lr=3", "finetune.lr x=3"])
def test_malformed_overrides_name_the_override(tmp_path, capsys, override: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(to_toml(ExperimentConfig()))
    err = _check(capsys, path, override)
    assert f"--set {override!r}" in err and "section.key=value" in err


def test_override_values_are_validated_like_file_values(tmp_path, capsys) -> None:
    path = tmp_path / "c.toml"
    path.write_text(to_toml(ExperimentConfig()))
    assert "finetune.lr: expected a finite number" in _check(capsys, path, "finetune.lr=nan")
    assert "restore.lr: expected a finite number" in _check(capsys, path, "restore.lr=1e999")
    assert "embed.epochs: expected a whole number" in _check(capsys, path, "embed.epochs=2.5")


def test_integral_floats_still_count_as_whole_numbers() -> None:
    cfg = load_config(data={"embed": {"epochs": 3.0, "batch_size": 64.0}})
    assert cfg.embed.epochs == 3 and isinstance(cfg.embed.epochs, int) and cfg.embed.batch_size == 64


def test_the_model_factories_check_their_options() -> None:
    from wmstudio.models import build_model

    with pytest.raises(ConfigError) as info:
        build_model("small_cnn", 1, 10, 8, {"width": -4})
    assert info.value.field == "model.options.width" and "whole number >= 1" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build_model("resnet20", 3, 10, 32, {"depth": 20}, field="extract.options")
    assert info.value.field == "extract.options.depth" and "its options: width" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build_model("vit", 3, 10, 30, {"patch": 4})
    assert info.value.field == "model.options.patch" and "multiple of the patch size" in str(info.value)
    with pytest.raises(ConfigError, match=r"model\.options: torchvision:resnet18 cannot be built"):
        build_model("torchvision:resnet18", 3, 10, 32, {"width_per_group": "wide"})
    assert build_model("small_cnn", 1, 10, 8, {"width": 4.0}).fc.in_features == 8


# ---------------------------------------------------------------- landscape settings

def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("args", "field", "words"), [
    (["--resolution", "100000"], "resolution", "from 3 to 501"),
    (["--kind", "line", "--resolution", "10000000"], "resolution", "from 2 to 10001"),
    (["--kind", "random", "--span", "inf"], "span", "finite number > 0"),
    (["--kind", "random", "--span", "nan"], "span", "finite number > 0"),
    (["--kind", "random", "--span", "1e300"], "span", "<= 1000"),
    (["--margin=-inf"], "margin", "finite number >= 0"),
    (["--batch-size", "100000000"], "batch_size", "held on the device"),
    (["--workers", "100000"], "--workers", "from 1 to 256"),
])
def test_landscape_bounds_refused_before_the_log_is_touched(demo_copy, capsys, args: list[str], field: str,
                                                             words: str) -> None:
    from wmstudio.landscape import list_landscapes

    before = _digest(demo_copy)
    assert main(["landscape", str(demo_copy), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wmstudio: error: {field}: ") and words in err and "Traceback" not in err
    assert _digest(demo_copy) == before and list_landscapes(demo_copy) == []


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"kind": "plane", "evil": 1}', '{"resolution": "x"}'])
def test_unreadable_stored_landscape_settings_are_a_run_log_error(text: str) -> None:
    from wmstudio.landscape.spec import LandscapeSpec

    with pytest.raises((RunLogError, ConfigError)):
        spec = LandscapeSpec.from_json(text)
        spec.check()


def test_landscape_spec_checks_types_from_a_stored_log() -> None:
    from wmstudio.landscape.spec import LandscapeSpec

    spec = LandscapeSpec.from_json(json.dumps({"resolution": "x"}))
    with pytest.raises(ConfigError, match="resolution: must be a whole number"):
        spec.check()


# ---------------------------------------------------------------- checks against the data set

def test_batches_too_large_for_the_images_are_refused() -> None:
    from wmstudio.config_check import check_against_data

    cfg = load_config(data={"embed": {"batch_size": 4096}})
    check_against_data(cfg, (3, 32, 32), 10, budget=2**30)  # 48 MiB: fine
    with pytest.raises(ConfigError) as info:
        check_against_data(cfg, (3, 512, 512), 10, budget=8 * 2**30)
    assert info.value.field == "embed.batch_size" and "4096 images of 3x512x512 take 12.0 GiB" in str(info.value)
    with pytest.raises(ConfigError, match=r"trigger.size: 100000 images"):
        check_against_data(load_config(data={"trigger": {"size": 100_000}}), (3, 64, 64), 10, budget=2**30)
    with pytest.raises(ConfigError, match=r"embed.ewe_target_class: 12 is not a class"):
        check_against_data(load_config(data={"embed": {"method": "ewe", "ewe_target_class": 12}}), (1, 8, 8), 10)


def test_a_run_whose_batch_exceeds_memory_stops_before_the_log_is_written(tmp_path, monkeypatch, capsys) -> None:
    import wmstudio.memory

    monkeypatch.setattr(wmstudio.memory, "memory_budget", lambda: 2**20)  # 1 MiB: 8x8 digits, 1024 a batch = 256 KiB
    path = tmp_path / "c.toml"
    path.write_text("[embed]\nbatch_size = 8192\n")
    out = tmp_path / "run.h5"
    assert main(["run", str(path), "--out", str(out), "-q", "--set", "run.threads=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wmstudio: error: embed.batch_size: 8192 images of 1x8x8") and "Traceback" not in err
    assert not out.exists()
