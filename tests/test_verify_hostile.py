"""A suspect's files are hostile: no code runs unless the user named it or opted in, and a model that
cannot answer (non-finite, constant, degenerate normalisation) is never declared to carry the watermark."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
import torch

from tests.conftest import quick_config
from wmstudio.cli import main
from wmstudio.config_io import load_config
from wmstudio.errors import CheckpointError, ConfigError, UntrustedCodeError

MODEL_FILE = '''
import pathlib
MARK = pathlib.Path(__file__).with_suffix(".imported")
MARK.write_text((MARK.read_text() if MARK.exists() else "") + "x")  # every import leaves a mark
from wmstudio.models.small_cnn import SmallCNN


def make(in_channels, num_classes):
    return SmallCNN(in_channels, num_classes, width=8)
'''


@pytest.fixture(scope="module")
def user_model_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(run log, the Python model file its config names, the file that file marks on import), after a
    digits run the user made with their own model file (the mark it left is removed)."""
    from wmstudio.pipeline import run_experiment

    root = tmp_path_factory.mktemp("user_model")
    net = root / "net.py"
    net.write_text(MODEL_FILE)
    cfg = load_config(data=quick_config(model={"arch": "", "file": str(net), "factory": "make"},
                                        trigger={"scheme": "content", "size": 40}, embed={"epochs": 6}))
    log = root / "run.h5"
    run_experiment(cfg, log, stages=["embed"])
    mark = net.with_suffix(".imported")
    assert mark.is_file()  # the user's own config: imported as asked
    mark.unlink()
    return log, net, mark


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- 0 code executions without opt-in

@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_export_metadata_naming_a_python_file_is_refused_without_trust(user_model_run, tmp_path, capsys,
                                                                        suffix: str) -> None:
    from wmstudio.export_model import export_model

    log, net, mark = user_model_run
    model = tmp_path / f"suspect{suffix}"
    export_model(f"{log}:embed", model)
    code, _, err = _cli(["verify", "--model", str(model), "--trigger", str(log)], capsys)
    assert code == 2 and not mark.exists(), err
    assert f"refused to import the Python model file {net.resolve()}" in err and "export metadata" in err
    assert "--trust" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, out, _ = _cli(["verify", "--model", str(model), "--trigger", str(log), "--trust"], capsys)
    assert code == 0 and mark.is_file() and "WATERMARK PRESENT" in out  # opted in: imported
    mark.unlink()


def test_crafted_metadata_naming_any_python_file_is_refused(user_model_run, tmp_path) -> None:
    """Metadata written by someone else naming some .py on the machine (here one that marks its import)."""
    from safetensors.torch import save_file

    from wmstudio.verify import verify

    log, _, _ = user_model_run
    evil = tmp_path / "evil.py"
    evil.write_text("import pathlib\npathlib.Path(__file__).with_suffix('.ran').write_text('ran')\n")
    meta = {"architecture": {"arch": "", "file": str(evil), "factory": "make", "options": {}}, "in_channels": 1,
            "num_classes": 10, "image_size": 8, "normalization": {"mean": [0.3], "std": [0.3]}}
    save_file({"w": torch.zeros(1)}, str(tmp_path / "m.safetensors"), metadata={"wmstudio": json.dumps(meta)})
    with pytest.raises(UntrustedCodeError, match="export metadata") as info:
        verify(str(tmp_path / "m.safetensors"), str(log))
    assert info.value.file == str(evil) and info.value.source == "export metadata"
    assert not evil.with_suffix(".ran").exists()


def test_a_log_config_naming_model_file_is_not_imported_by_verify_or_landscape(user_model_run, tmp_path,
                                                                               capsys) -> None:
    log, net, mark = user_model_run
    code, _, err = _cli(["verify", "--model", f"{log}:embed", "--trigger", str(log)], capsys)
    assert code == 2 and not mark.exists()
    assert str(net) in err and "run log config" in err and "--trust" in err
    code, _, err = _cli(["landscape", str(log), "--kind", "random", "--resolution", "3", "--images", "50", "-q"], capsys)
    assert code == 2 and not mark.exists()
    assert str(net) in err and "run log config" in err and "wmstudio landscape LOG --trust" in err
    # the log's own trust_checkpoint_code is not an opt-in: the log is the file being distrusted
    from wmstudio.landscape.context import load_context

    with pytest.raises(UntrustedCodeError):
        load_context(log, "cpu")
    assert not mark.exists()
    # naming the file yourself, or --trust, imports it
    code, out, _ = _cli(["verify", "--model", f"{log}:embed", "--trigger", str(log), "--model-file", str(net),
                         "--factory", "make"], capsys)
    assert code == 0 and mark.is_file() and "WATERMARK PRESENT" in out
    mark.unlink()
    ctx = load_context(log, "cpu", trust_code=True)
    assert mark.is_file() and ctx.model is not None
    mark.unlink()


def test_a_log_in_a_sweep_folder_is_named_as_such(tmp_path) -> None:
    from wmstudio.models.code_trust import log_origin

    (tmp_path / "runs").mkdir()
    (tmp_path / "sweep.json").write_text("{}")
    assert log_origin(tmp_path / "runs" / "r.h5", False, "x").source == "sweep folder"
    (tmp_path / "runs" / "deeper").mkdir()
    assert log_origin(tmp_path / "runs" / "deeper" / "r.h5", False, "x").source == "run log config"
    with pytest.raises(UntrustedCodeError, match="named by the sweep folder"):
        log_origin(tmp_path / "runs" / "r.h5", False, "x").check("/x/net.py")
    log_origin(tmp_path / "runs" / "r.h5", True, "x").check("/x/net.py")  # trusted: allowed


# ---------------------------------------------------------------- answers that cannot be gamed

@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A watermarked digits run (registry model, content triggers labelled class 0)."""
    from wmstudio.pipeline import run_experiment

    log = tmp_path_factory.mktemp("plain") / "run.h5"
    cfg = load_config(data=quick_config(model={"options": {"width": 8}}, trigger={"scheme": "content", "size": 60},
                                        embed={"epochs": 8}))
    run_experiment(cfg, log, stages=["embed"])
    return log


def _export_with(plain_run: Path, tmp_path: Path, weights: dict | None = None, norm: dict | None = None) -> Path:
    from wmstudio.export_model import export_metadata

    tensors, meta = export_metadata(plain_run, "embed")
    tensors = {k: v.clone() for k, v in tensors.items()}
    if weights:
        for k, fill in weights.items():
            tensors[k].fill_(fill)
    if norm is not None:
        meta["normalization"] = norm
    out = tmp_path / "suspect.pt"
    torch.save({"state_dict": tensors, "wmstudio": meta}, out)
    return out


def test_the_watermarked_export_verifies_as_present(plain_run, tmp_path) -> None:
    from wmstudio.verify import verify

    v = verify(str(_export_with(plain_run, tmp_path)), str(plain_run))
    assert v.verified and v.headline() == "WATERMARK PRESENT" and not v.unverifiable
    assert v.control_p_value is not None and v.control_p_value <= 0.01 and "McNemar" in v.control_test


def test_nan_weights_cannot_be_verified_and_say_why(plain_run, tmp_path, capsys) -> None:
    from wmstudio.verify import verify

    tensors = torch.load(_export_with(plain_run, tmp_path), weights_only=True)["state_dict"]
    model = _export_with(plain_run, tmp_path, {k: math.nan for k, v in tensors.items() if v.is_floating_point()})
    v = verify(str(model), str(plain_run))
    assert not v.verified and v.unverifiable.startswith("the model's weights are not finite (NaN or inf)")
    code, out, _ = _cli(["verify", "-m", str(model), "-t", str(plain_run)], capsys)
    assert code == 0 and "CANNOT BE VERIFIED: the model's weights are not finite" in out and "PRESENT" not in out
    assert "trigger acc  not measured" in out


def test_nan_logits_of_finite_weights_cannot_be_verified(plain_run, tmp_path) -> None:
    """Finite weights whose outputs overflow (huge head weights): NaN/inf logits argmax to class 0."""
    from wmstudio.verify import verify

    model = _export_with(plain_run, tmp_path, {"fc.weight": 3e38, "fc.bias": -3e38})
    v = verify(str(model), str(plain_run))
    assert not v.verified and ("not finite" in v.unverifiable or "same for every input" in v.unverifiable
                               or "constant" in v.unverifiable), v.unverifiable


def test_a_constant_model_cannot_be_verified(plain_run, tmp_path) -> None:
    from wmstudio.verify import verify

    model = _export_with(plain_run, tmp_path, {"fc.weight": 0.0})
    state = torch.load(model, weights_only=True)
    state["state_dict"]["fc.bias"] = torch.tensor([5.0] + [0.0] * 9)  # class 0 (the target) for every input
    torch.save(state, model)
    v = verify(str(model), str(plain_run))
    assert v.trigger_acc == 1.0 and v.p_value < 1e-50  # the chance test alone would say "present"
    assert not v.verified and "same for every input" in v.unverifiable and v.headline() == "CANNOT BE VERIFIED"
    assert "CANNOT BE VERIFIED" in v.text() and "PRESENT" not in v.text()


@pytest.mark.parametrize(("std", "why"), [([0.0], "outside"), ([-1e-30], "outside"), ([1e-30], "outside"),
                                          ([math.nan], "not finite"), ([math.inf], "not finite"),
                                          ([1e30], "outside")])
def test_a_degenerate_declared_normalisation_cannot_be_verified(plain_run, tmp_path, std, why) -> None:
    from wmstudio.verify import verify

    model = _export_with(plain_run, tmp_path, norm={"mean": [0.3], "std": std})
    v = verify(str(model), str(plain_run))
    assert not v.verified and v.unverifiable.startswith("the export metadata's normalisation is degenerate")
    assert why in v.unverifiable


def test_normalisation_checks() -> None:
    from wmstudio.verify import normalization_problem

    assert normalization_problem([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]) == ""
    assert "not finite" in normalization_problem([math.nan], [0.3])
    assert "one mean and one std per channel" in normalization_problem([0.1, 0.2], [0.3])
    assert "not lists of numbers" in normalization_problem("x", [0.3])
    assert "mean" in normalization_problem([1e9], [0.3])


def test_a_degenerate_normalisation_in_the_log_cannot_be_verified(plain_run, tmp_path, monkeypatch) -> None:
    from wmstudio.export_model import export_metadata
    from wmstudio.runlog_reader import RunLogReader
    from wmstudio.verify import verify

    tensors, _ = export_metadata(plain_run, "embed")
    torch.save(tensors, tmp_path / "plain.pt")  # no metadata: the log's normalisation is used
    real = RunLogReader.data_info
    monkeypatch.setattr(RunLogReader, "data_info", lambda self: {**real(self), "std": [-1e-30]})
    v = verify(str(tmp_path / "plain.pt"), str(plain_run))
    assert not v.verified and v.unverifiable.startswith("the normalisation the run log records is degenerate")


def test_declared_normalisation_and_weights_name_non_finite_values(tmp_path) -> None:
    """A run starting from such a checkpoint says what is wrong, instead of diverging later."""
    from wmstudio.models import build_model
    from wmstudio.models.declared import from_checkpoint
    from wmstudio.models.pretrained import load_pretrained

    model = build_model("small_cnn", 1, 10, 8, {"width": 8})
    torch.save({"state_dict": model.state_dict(), "normalization": {"mean": [math.nan], "std": [0.3]}}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="not finite"):
        from_checkpoint(str(tmp_path / "a.pt"))
    torch.save({"state_dict": model.state_dict(), "normalization": {"mean": [0.3], "std": [1e-30]}}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="std below"):
        from_checkpoint(str(tmp_path / "b.pt"))
    sd = model.state_dict()
    sd["fc.weight"] = torch.full_like(sd["fc.weight"], math.nan)
    torch.save(sd, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=r"not finite \(NaN or inf\) in 1 tensor: fc.weight"):
        load_pretrained(build_model("small_cnn", 1, 10, 8, {"width": 8}), tmp_path / "nan.pt")


class _Call:
    def __init__(self, fn: object, *args: object) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


@pytest.mark.parametrize(("fn", "args", "name"), [(eval, ("1 + 1",), "builtins.eval"),
                                                   (exec, ("x = 1",), "builtins.exec"),
                                                   (getattr, (str, "join"), "builtins.getattr")])
def test_pickles_naming_builtin_callables_are_refused_by_name(tmp_path, fn, args, name) -> None:
    from wmstudio.models.checkpoint import read_checkpoint

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": _Call(fn, *args)}, protocol=2))
    with pytest.raises(CheckpointError, match=rf"refused: loading this pickle would run code \({name}") as info:
        read_checkpoint(path)
    assert "corrupted" not in str(info.value)
    path.write_bytes(pickle.dumps({"w": _Call(fn, *args)}, protocol=4))  # STACK_GLOBAL
    with pytest.raises(CheckpointError, match=name):
        read_checkpoint(path)


def test_no_control_at_all_cannot_be_verified(plain_run, tmp_path, capsys) -> None:
    """A trigger folder without a config: no control images and no test data to measure the bias on."""
    model = _export_with(plain_run, tmp_path)
    _cli(["triggers", str(plain_run), "--out", str(tmp_path / "trig")], capsys)
    code, out, _ = _cli(["verify", "-m", str(model), "-t", str(tmp_path / "trig")], capsys)
    assert code == 0 and "CANNOT BE VERIFIED: no control" in out and "PRESENT" not in out


def test_an_unmeasurable_null_model_is_refused(plain_run, tmp_path) -> None:
    from wmstudio.null_models import measure_checkpoints

    tensors = torch.load(_export_with(plain_run, tmp_path), weights_only=True)["state_dict"]
    model = _export_with(plain_run, tmp_path, {k: math.nan for k, v in tensors.items() if v.is_floating_point()})
    with pytest.raises(ConfigError, match="cannot be measured as a null model"):
        measure_checkpoints([str(model)], str(plain_run), tmp_path / "n.h5")
