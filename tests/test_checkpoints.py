from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from wmstudio.errors import CheckpointError, ConfigError
from wmstudio.models import build_model, last_linear_name, load_checkpoint


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", 1, 10, 8)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("form", ["plain", "state_dict", "model", "net", "module_prefix", "orig_mod", "nested_prefix"])
def test_pickled_forms(tmp_path, form: str) -> None:
    src = _model(1)
    sd = src.state_dict()
    obj = {
        "plain": sd,
        "state_dict": {"state_dict": sd, "epoch": 3, "optimizer": {"lr": 0.1}},
        "model": {"model": sd},
        "net": {"net": sd, "acc": 91.2},
        "module_prefix": {f"module.{k}": v for k, v in sd.items()},
        "orig_mod": {f"_orig_mod.{k}": v for k, v in sd.items()},
        "nested_prefix": {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}},
    }[form]
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path)
    dst = _model(2)
    assert not _same(src, dst)
    assert load_checkpoint(dst, path) == []
    assert _same(src, dst)


def test_safetensors_and_torchscript(tmp_path) -> None:
    src = _model(1)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, tmp_path / "m.safetensors")
    dst = _model(2)
    load_checkpoint(dst, tmp_path / "m.safetensors")
    assert _same(src, dst)
    torch.jit.script(src).save(str(tmp_path / "m.ts"))
    dst = _model(3)
    load_checkpoint(dst, tmp_path / "m.ts")
    assert _same(src, dst)


def test_corrupted_files_are_rejected_with_the_path(tmp_path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x80\x04garbage" * 10)
    with pytest.raises(CheckpointError, match="broken.pt: not a readable PyTorch checkpoint"):
        load_checkpoint(_model(), bad)
    bad_st = tmp_path / "broken.safetensors"
    bad_st.write_bytes(b"12345678nonsense")
    with pytest.raises(CheckpointError, match="broken.safetensors: not a readable safetensors"):
        load_checkpoint(_model(), bad_st)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(_model(), tmp_path / "missing.pt")


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - a pickle that runs code when loaded
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_execute_code_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with path.open("wb") as fh:
        pickle.dump({"state_dict": _Exploit(str(marker))}, fh)
    with pytest.raises(CheckpointError, match="refused: loading this pickle would run code .*system"):
        load_checkpoint(_model(), path)
    assert not marker.exists()


def test_mismatches_are_named(tmp_path) -> None:
    sd = _model().state_dict()
    sd["fc.weight"] = torch.zeros(5, 64)
    torch.save(sd, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"shape differs \(1\):\n +fc.weight +checkpoint \(5, 64\) +model \(10, 64\)"
                       r"\n.*classifier head \(fc\) is for 5 classes and this model has 10"):
        load_checkpoint(_model(), tmp_path / "shape.pt")
    sd = _model().state_dict()
    del sd["fc.bias"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "keys.pt")
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint \(1\): fc.bias\n +not in the model \(1\): "
                                              r"extra.weight"):
        load_checkpoint(_model(), tmp_path / "keys.pt")
    warnings = load_checkpoint(_model(), tmp_path / "keys.pt", strict=False)
    assert any("fc.bias" in w for w in warnings)


def test_user_model_file(tmp_path) -> None:
    file = tmp_path / "mine.py"
    file.write_text(
        "import torch.nn as nn\n"
        "def make(num_classes, in_channels):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 64, 32), nn.ReLU(), nn.Linear(32, num_classes))\n"
    )
    model = build_model("ignored", 1, 10, 8, file=str(file), factory="make")
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert last_linear_name(model) == "3"
    with pytest.raises(ConfigError, match="no function or class named 'nope'"):
        build_model("ignored", 1, 10, 8, file=str(file), factory="nope")
    with pytest.raises(ConfigError, match="model.file"):
        build_model("ignored", 1, 10, 8, file=str(tmp_path / "absent.py"), factory="make")


def test_registry_models_run_on_cifar_shapes() -> None:
    for arch in ("resnet20", "resnet32", "vit"):
        assert build_model(arch, 3, 10, 32)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match="unknown model 'resnet7'"):
        build_model("resnet7", 3, 10, 32)


def test_checkpoint_from_a_run_log_stage(demo_run) -> None:
    from wmstudio.models import build_model, load_checkpoint
    from wmstudio.runlog_reader import RunLogReader

    model = build_model("small_cnn", 1, 10, 8, {"width": 16}, "", "")
    assert load_checkpoint(model, f"{demo_run}:embed") == []
    expected = RunLogReader(demo_run).weights("embed")
    for k, v in model.state_dict().items():
        assert torch.equal(v, expected[k])
    load_checkpoint(model, str(demo_run))  # no stage: the last one with weights (restore)
    assert torch.equal(model.state_dict()["fc.weight"], RunLogReader(demo_run).weights("restore")["fc.weight"])
    with pytest.raises(CheckpointError, match="stage 'nope' has no saved weights"):
        load_checkpoint(model, f"{demo_run}:nope")
