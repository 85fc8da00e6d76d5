"""``export-model`` round trips and ``verify`` on a small digits run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import quick_config
from wmstudio.config_io import load_config, to_toml
from wmstudio.data.batches import Normalizer
from wmstudio.metrics import evaluate
from wmstudio.models.checkpoint import read_checkpoint
from wmstudio.models.code_trust import CodeOrigin
from wmstudio.runlog_reader import RunLogReader

MINE = CodeOrigin("export metadata", "test", False, "")  # these exports name no Python model file


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wmstudio.pipeline import run_experiment

    out = tmp_path_factory.mktemp("export") / "run.h5"
    cfg = load_config(data=quick_config(embed={"epochs": 8}, finetune={"epochs": 1}, restore={"epochs": 1}))
    run_experiment(cfg, out)
    return out


def _accuracies(model: torch.nn.Module, log: Path) -> tuple[float, float, float, float]:
    from wmstudio.data import load_dataset

    r = RunLogReader(log)
    info = r.data_info()
    norm = Normalizer(tuple(info["mean"]), tuple(info["std"]))
    test = load_dataset("digits").test.subset(torch.from_numpy(r.splits()["test"]), "test")
    ts = r.trigger_set()
    return (*evaluate(model, test.images, test.labels, norm), *evaluate(model, ts.images, ts.labels, norm))


@pytest.mark.parametrize(("stage", "suffix"), [("embed", ".safetensors"), ("finetune", ".pt"), ("restore", ".safetensors")])
def test_export_round_trip_gives_the_same_accuracies(small_run, tmp_path, stage: str, suffix: str) -> None:
    from wmstudio.export_model import build_from_metadata, export_model
    from wmstudio.models import build_model, load_checkpoint

    out = tmp_path / f"{stage}{suffix}"
    meta = export_model(f"{small_run}:{stage}", out)
    info = RunLogReader(small_run).data_info()
    assert meta["architecture"]["arch"] == "small_cnn" and meta["num_classes"] == 10
    assert meta["normalization"]["mean"] == pytest.approx(info["mean"]) and meta["stage"] == stage
    ckpt = read_checkpoint(out)
    assert ckpt.info == json.loads(json.dumps(meta))  # the metadata travels with the file
    from_log = build_model("small_cnn", 1, 10, 8)
    load_checkpoint(from_log, f"{small_run}:{stage}")
    exported = build_from_metadata(ckpt.info, MINE)
    assert load_checkpoint(exported, out) == []
    rec = RunLogReader(small_run).stage(stage)
    got, want = _accuracies(exported, small_run), _accuracies(from_log, small_run)
    assert got == pytest.approx(want, abs=1e-6)
    assert got[1] == pytest.approx(rec.final("test_acc"), abs=1e-6)
    assert got[3] == pytest.approx(rec.final("trigger_acc"), abs=1e-6)


def test_an_exported_model_as_model_checkpoint_starts_where_the_log_left_off(small_run, tmp_path) -> None:
    from wmstudio.export_model import export_model
    from wmstudio.pipeline import run_experiment

    export_model(f"{small_run}:embed", tmp_path / "wm.pt")
    cfg = load_config(data=quick_config(model={"checkpoint": str(tmp_path / "wm.pt")}, embed={"enabled": False},
                                        finetune={"epochs": 1}, restore={"enabled": False}))
    run_experiment(cfg, tmp_path / "again.h5")
    before = RunLogReader(small_run).stage("finetune").eval
    after = RunLogReader(tmp_path / "again.h5").stage("finetune").eval
    for col in ("test_acc", "trigger_acc", "test_loss", "trigger_loss"):
        assert after[col][0] == pytest.approx(before[col][0], abs=1e-6), col


def test_the_extracted_copy_exports_with_its_own_architecture(tmp_path) -> None:
    from wmstudio.export_model import build_from_metadata, export_model
    from wmstudio.models import load_checkpoint
    from wmstudio.pipeline import run_experiment

    cfg = load_config(data=quick_config(embed={"epochs": 2}, finetune={"enabled": False}, restore={"enabled": False},
                                        extract={"enabled": True, "epochs": 1, "arch": "small_cnn",
                                                 "options": {"width": 8}}))
    run_experiment(cfg, tmp_path / "x.h5")
    meta = export_model(f"{tmp_path / 'x.h5'}:extract", tmp_path / "copy.safetensors")
    assert meta["architecture"]["options"] == {"width": 8}
    model = build_from_metadata(meta, MINE)
    assert load_checkpoint(model, tmp_path / "copy.safetensors") == []
    got = _accuracies(model, tmp_path / "x.h5")
    assert got[1] == pytest.approx(RunLogReader(tmp_path / "x.h5").stage("extract").final("test_acc"), abs=1e-6)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from wmstudio.cli import main

    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_decides_at_the_false_positive_rate(small_run, tmp_path, capsys) -> None:
    from wmstudio.metrics import binomial_p_value
    from wmstudio.models import build_model

    code, out, _ = _cli(["export-model", f"{small_run}:embed", "--out", str(tmp_path / "wm.safetensors")], capsys)
    assert code == 0 and "wm.safetensors" in out
    code, out, _ = _cli(["verify", "--model", str(tmp_path / "wm.safetensors"), "--trigger", str(small_run)], capsys)
    embed = RunLogReader(small_run).stage("embed")
    n = len(RunLogReader(small_run).trigger()["labels"])
    k = int(round(embed.final("trigger_acc") * n))
    assert code == 0 and f"trigger acc  {k / n:.3f} ({k}/{n})" in out
    assert f"p-value      {binomial_p_value(k, n, 0.1):.3g}" in out
    assert "WATERMARK PRESENT at false-positive rate 0.01" in out
    assert "control p    " in out and "McNemar" in out  # the log holds the control images: the paired test
    assert f"test acc     {embed.final('test_acc'):.3f}" in out
    torch.manual_seed(5)
    torch.save(build_model("small_cnn", 1, 10, 8).state_dict(), tmp_path / "innocent.pt")
    code, out, _ = _cli(["verify", "--model", str(tmp_path / "innocent.pt"), "--trigger", str(small_run)], capsys)
    # an untrained model answers one class for everything: it cannot be verified either way
    assert code == 0 and "CANNOT BE VERIFIED: the model gives class" in out and "PRESENT" not in out
    # a trigger folder, with the config for the architecture, normalisation and test data
    _cli(["triggers", str(small_run), "--out", str(tmp_path / "trig")], capsys)
    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(load_config(data=quick_config())))
    code, out, _ = _cli(["verify", "-m", str(tmp_path / "wm.safetensors"), "-t", str(tmp_path / "trig"),
                         "--config", str(cfg), "--fpr", "1e-6"], capsys)
    assert code == 0 and f"({k}/{n})" in out and "test acc     0." in out


@pytest.mark.parametrize(("args", "message"), [
    (["--fpr", "1.5"], "--fpr: expected a false-positive rate in (0, 1), got 1.5"),
    (["--trigger", "nowhere"], "nowhere: expected a run log (.h5) or a folder of trigger images"),
    (["--model", "absent.pt"], "absent.pt: no such checkpoint file"),
    (["--arch", "resnet20"], "does not fit the model (CifarResNet)"),
    (["--options", "[1"], "--options: expected a JSON object"),
    (["--model-file", "x.py"], "--factory: --model-file is set"),
])
def test_verify_errors_are_one_clear_line(small_run, tmp_path, capsys, monkeypatch, args, message) -> None:
    from wmstudio.export_model import export_model

    monkeypatch.chdir(tmp_path)
    export_model(f"{small_run}:embed", tmp_path / "wm.pt")
    base = {"--model": "wm.pt", "--trigger": str(small_run)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    code, _, err = _cli(["verify", *[x for kv in base.items() for x in kv]], capsys)
    assert code == 2 and err.startswith("wmstudio: error: ") and message in err and "Traceback" not in err


def test_export_errors(small_run, tmp_path, capsys) -> None:
    code, _, err = _cli(["export-model", f"{small_run}:nope", "--out", str(tmp_path / "m.pt")], capsys)
    assert code == 2 and "stage 'nope' has no saved weights" in err
    code, _, err = _cli(["export-model", f"{small_run}:embed", "--out", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and "m.onnx: the export format is chosen by the suffix" in err
    code, _, err = _cli(["export-model", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "m.pt")], capsys)
    assert code == 2 and "absent.h5: no such run log" in err
