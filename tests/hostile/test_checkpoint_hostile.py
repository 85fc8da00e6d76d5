"""Crafted checkpoints that would run code when loaded: nothing runs, each ends in one clear error."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Tuple  # noqa: UP035 - TorchScript's annotations

import pytest
import torch
from torch import nn

from wmstudio.config_io import load_config
from wmstudio.errors import CheckpointError
from wmstudio.models import build_model, load_checkpoint


class _Writer(nn.Module):
    """A submodule whose TorchScript __setstate__ creates and overwrites the file at ``path`` on load."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.w = nn.Parameter(torch.ones(2))
        self.marker = torch.zeros(1, dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w.sum()

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, torch.Tensor, bool]:  # noqa: UP006
        return (self.path, self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, torch.Tensor, bool]) -> None:  # noqa: UP006
        self.path = state[0]
        self.w = state[1]
        self.training = state[2]
        self.marker = torch.from_file(self.path, True, 16, dtype=torch.uint8).fill_(65)


class _Outer(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.payload = _Writer(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.payload(x))


def malicious_torchscript(path: Path, marker: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(_Outer(str(marker))).save(str(path))
    return path


def test_the_crafted_archive_really_runs_code_under_torch_jit_load(tmp_path) -> None:
    """The payload is live: torch.jit.load writes the file (so the tests below can fail)."""
    marker = tmp_path / "written_by_jit_load"
    archive = malicious_torchscript(tmp_path / "evil.pt", marker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(archive))
    assert marker.read_bytes() == b"A" * 16


def test_model_checkpoint_never_runs_torchscript_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    archive = malicious_torchscript(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build_model("small_cnn", 1, 10, 8), archive)
    text = str(err.value)
    assert "evil.pt: refused" in text and "__setstate__" in text
    assert "torch.save(torch.jit.load(FILE).state_dict()" in text and "model.trust_checkpoint_code" in text
    assert not marker.exists()


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from wmstudio.cli import main

    code = main(args)
    return code, capsys.readouterr().err


def test_a_run_with_the_archive_fails_before_data_and_runs_nothing(tmp_path, capsys, monkeypatch) -> None:
    import wmstudio.assembly as assembly

    marker = tmp_path / "pwned"
    archive = malicious_torchscript(tmp_path / "evil.pt", marker)
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(f'[model]\ncheckpoint = "{archive}"\n')

    def no_data(*_a, **_k):  # the checkpoint is refused before any data is decoded
        raise AssertionError("data was loaded before the checkpoint was checked")

    monkeypatch.setattr(assembly, "load_dataset", no_data)
    code, err = _run_cli(["run", str(cfg_file), "--out", str(tmp_path / "run.h5"), "-q"], capsys)
    assert code == 2 and err.startswith("wmstudio: error: ") and "refused" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "run.h5").exists()


def test_the_trigger_preview_never_runs_torchscript_code(tmp_path) -> None:
    from wmstudio.pipeline import preview_trigger_set

    marker = tmp_path / "pwned"
    archive = malicious_torchscript(tmp_path / "evil.pt", marker)
    cfg = load_config(data={"model": {"checkpoint": str(archive)}})
    with pytest.raises(CheckpointError, match="refused"):
        preview_trigger_set(cfg)
    assert not marker.exists()


def test_a_sweep_base_config_never_runs_torchscript_code(tmp_path) -> None:
    from wmstudio.sweep import load_sweep
    from wmstudio.sweep.tasks import run_task

    marker = tmp_path / "pwned"
    archive = malicious_torchscript(tmp_path / "evil.pt", marker)
    (tmp_path / "base.toml").write_text(f'[model]\ncheckpoint = "{archive}"\n')
    sweep = tmp_path / "s.toml"
    sweep.write_text('[sweep]\nbase = "base.toml"\n[axes]\n"finetune.lr" = [0.01]\n')
    spec = load_sweep(sweep)
    plan = spec.runs[0]
    messages = list(run_task("embed", {"run_id": plan.embed_id, "values": plan.embed_values,
                                       "config": plan.config}, 1, {}))
    record = messages[-1]["record"]
    assert record["status"] == "failed" and "refused" in record["error"] and "__setstate__" in record["error"]
    assert not marker.exists()


def test_code_runs_only_with_the_explicit_opt_in(tmp_path) -> None:
    marker = tmp_path / "allowed"
    archive = malicious_torchscript(tmp_path / "evil.pt", marker)
    model = _Outer("unused")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = load_checkpoint(model, archive, strict=False, trust_code=True)
    assert marker.exists()  # the user asked for it
    assert any("trust_checkpoint_code = true" in n for n in notes)


def _rewrite(archive: Path, out: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, data if item.endswith(name) else src.read(item))
    return out


class _System:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):  # noqa: ANN204 - a pickle that runs a shell command
        return (os.system, (self.cmd,))


def test_a_torchscript_data_pkl_with_a_foreign_global_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned"
    model = build_model("small_cnn", 1, 10, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(tmp_path / "ok.pt"))
    bad = _rewrite(tmp_path / "ok.pt", tmp_path / "bad.pt", "/data.pkl", pickle.dumps(_System(f"touch {marker}")))
    with pytest.raises(CheckpointError, match=r"refused.*(posix|os)\.system"):
        load_checkpoint(build_model("small_cnn", 1, 10, 8), bad)
    assert not marker.exists()


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path) -> None:
    model = build_model("small_cnn", 1, 10, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(tmp_path / "ok.pt"))
    with zipfile.ZipFile(tmp_path / "ok.pt") as zf:
        storage = next(n for n in zf.namelist() if n.endswith("/data/0"))
    bad = _rewrite(tmp_path / "ok.pt", tmp_path / "short.pt", storage, b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="short.pt: refused.*storage"):
        load_checkpoint(build_model("small_cnn", 1, 10, 8), bad)


@pytest.mark.parametrize("trust", [False, True])
def test_how_a_torchscript_checkpoint_was_read_is_in_the_log(tmp_path, trust: bool) -> None:
    import json

    from wmstudio.inspect_log import summarize
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog_reader import RunLogReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(build_model("small_cnn", 1, 10, 8)).save(str(tmp_path / "plain.pt"))
    cfg = load_config(data={"run": {"threads": 1}, "embed": {"epochs": 1}, "finetune": {"enabled": False},
                            "restore": {"enabled": False},
                            "model": {"checkpoint": str(tmp_path / "plain.pt"), "trust_checkpoint_code": trust}})
    run_experiment(cfg, tmp_path / "run.h5")
    reader = RunLogReader(tmp_path / "run.h5")
    assert json.loads(reader.config_json)["model"]["trust_checkpoint_code"] is trust
    assert json.loads(reader.attrs["model_json"])["checkpoint"]["trusted_code"] is trust
    text = summarize(str(tmp_path / "run.h5"))
    if trust:
        assert "TorchScript (loaded with torch.jit.load: its code ran, trusted)" in text
        assert "model.trust_checkpoint_code = true: code in the checkpoint was allowed to run" in text
    else:
        assert "TorchScript (tensors read, no code run)" in text and "trust_checkpoint_code" not in text


def test_a_tensor_claiming_more_elements_than_its_storage_is_refused(tmp_path) -> None:
    """A zero-stride tensor of 10^12 elements over a 2-element storage would exhaust memory on clone."""
    import collections
    import io

    import torch._utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(nn.Linear(2, 1)).save(str(tmp_path / "ok.pt"))

    class _StorageRef:
        pass

    class _Huge:
        def __reduce__(self):  # noqa: ANN204 - pickles as _rebuild_tensor_v2(storage, 0, size, stride, ...)
            return (torch._utils._rebuild_tensor_v2,
                    (_StorageRef(), 0, (10**6, 10**6), (0, 0), False, collections.OrderedDict()))

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj):  # noqa: ANN001, ANN202
            return ("storage", torch.FloatStorage, "0", "cpu", 2) if isinstance(obj, _StorageRef) else None

    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump({"weight": _Huge()})
    bad = _rewrite(tmp_path / "ok.pt", tmp_path / "huge.pt", "/data.pkl", buf.getvalue())
    with pytest.raises(CheckpointError, match=r"huge.pt: refused.*claims more elements than its storage"):
        load_checkpoint(nn.Linear(2, 1), bad)


@pytest.mark.parametrize("kind", ["torchscript", "pickle", "safetensors"])
def test_random_byte_flips_end_in_a_load_or_one_clear_error(tmp_path, kind: str) -> None:
    import random

    from safetensors.torch import save_file

    model = build_model("small_cnn", 1, 10, 8, {"width": 4})
    good = tmp_path / {"torchscript": "m.ts", "pickle": "m.pt", "safetensors": "m.safetensors"}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "torchscript":
            torch.jit.script(model).save(str(good))
        elif kind == "pickle":
            torch.save(model.state_dict(), good)
        else:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, good)
    blob = good.read_bytes()
    rng = random.Random(1234)
    outcomes = {"loaded": 0, "error": 0}
    for i in range(60):
        data = bytearray(blob)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"flip{i}{good.suffix}"
        path.write_bytes(bytes(data))
        try:
            load_checkpoint(build_model("small_cnn", 1, 10, 8, {"width": 4}), path)
            outcomes["loaded"] += 1
        except CheckpointError as exc:
            assert str(path) in str(exc)
            outcomes["error"] += 1
    print(f"{kind}: 60 byte-flipped files: {outcomes}")
    assert sum(outcomes.values()) == 60


class _NumpyCall:
    def __reduce__(self):  # noqa: ANN204 - a pickle that calls a numpy function on load
        import numpy as np

        return (np.load, ("/etc/hostname",))


def test_numpy_metadata_loads_and_numpy_callables_are_refused(tmp_path) -> None:
    import numpy as np

    sd = build_model("small_cnn", 1, 10, 8).state_dict()
    torch.save({"state_dict": sd, "best_prec1": np.float64(91.8), "hist": np.arange(3)}, tmp_path / "np.pt")
    model = build_model("small_cnn", 1, 10, 8)
    assert load_checkpoint(model, tmp_path / "np.pt") == []
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    torch.save({"state_dict": sd, "x": _NumpyCall()}, tmp_path / "npcall.pt")
    with pytest.raises(CheckpointError, match=r"npcall.pt: refused: loading this pickle would run code \(numpy.load\)"):
        load_checkpoint(build_model("small_cnn", 1, 10, 8), tmp_path / "npcall.pt")
