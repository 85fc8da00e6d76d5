"""Crafted HDF5 files (issue 22, items 2, 5 and 6): run logs, landscapes and null-model files that
point outside themselves, declare huge shapes, carry damaged attributes or out-of-range values, and
sweep folders with wrong types. Each must end in one clear error, before anything is read or written.

The logs are written by ``RunLogWriter`` directly (no training), so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT

from wmstudio.cli import main
from wmstudio.errors import CheckpointError, RunLogError
from wmstudio.runlog import RunLogWriter
from wmstudio.runlog_reader import RunLogReader

SECRET = "TOP-SECRET-PASSWORD-1234567890"


def make_log(path: Path, n: int = 8) -> Path:
    """A small, complete log: data record, trigger set, one stage with rows and weights."""
    w = RunLogWriter.create(path, "", json.dumps({"model": {"arch": "small_cnn"}}), "crafted", "cpu")
    w.write_data({"name": "digits", "num_classes": 10, "shape": [1, 8, 8], "mean": [0.5], "std": [0.25],
                  "classes": [str(i) for i in range(10)]},
                 {"owner": np.arange(10), "attacker": np.arange(10, 20), "test": np.arange(5)})
    rng = np.random.default_rng(0)
    w.write_trigger(rng.integers(0, 255, (n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 10, np.full(n, -1),
                    "abstract", 3, {"note": "x"})
    w.begin_stage("embed", 0, {"epochs": 1}, 1, 2, ["conv"], "initial")
    w.append("embed", [(1, 0.5, 1.0, 0.1)], {"global_step": 1, "epoch": 1.0, "test_acc": 0.5, "trigger_acc": 0.9},
             [0.1], [0.9])
    w.save_weights("embed", {"conv.weight": __import__("torch").ones(2, 1, 3, 3)})
    w.end_stage("embed", "finished")
    w.set_status("finished")
    w.close()
    return path


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    return make_log(tmp_path / "run.h5")


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    p = tmp_path / "secret.txt"
    p.write_text(SECRET * 40)
    return p


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err + captured.out


def refused(capsys: pytest.CaptureFixture[str], log: Path, where: str, why: str, *commands: list[str]) -> None:
    """Every reader and the CLI commands end in one RunLogError naming the file, the object and the reason."""
    with pytest.raises(RunLogError) as info:
        RunLogReader(log)
    assert str(log) in str(info.value) and where in str(info.value) and why in str(info.value), str(info.value)
    for argv in commands or (["inspect", str(log)],):
        code, err = cli(capsys, *argv)
        assert code == 2 and err.count("wmstudio: error:") == 1 and why in err, err


def _replace_with_external(log: Path, name: str, target: Path, dtype: str = "uint8") -> None:
    with h5py.File(log, "a") as f:
        shape, dt = f[name].shape, f[name].dtype
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dt if dtype == "same" else dtype,
                         external=[(str(target), 0, h5py.h5f.UNLIMITED)])


# ------------------------------------------------------------------ item 2: nothing outside the file

def test_external_storage_on_a_secret_is_refused_by_triggers_and_export(log, secret, tmp_path, capsys) -> None:
    _replace_with_external(log, "/trigger/images", secret)
    out = tmp_path / "pngs"
    refused(capsys, log, "/trigger/images", "external raw storage", ["triggers", str(log), "--out", str(out)],
            ["inspect", str(log)], ["export-model", f"{log}:embed", "--out", str(tmp_path / "m.safetensors")])
    assert not out.exists() and not (tmp_path / "m.safetensors").exists()
    # the same on a weight: the secret never reaches an exported model
    log2 = make_log(tmp_path / "w.h5")
    _replace_with_external(log2, "/stages/embed/weights/conv.weight", secret, "same")
    refused(capsys, log2, "/stages/embed/weights/conv.weight", "external raw storage",
            ["export-model", f"{log2}:embed", "--out", str(tmp_path / "m2.pt")])
    assert not (tmp_path / "m2.pt").exists()


def test_external_storage_on_a_fifo_or_the_zero_device_does_not_hang(log, tmp_path, capsys) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _replace_with_external(log, "/trigger/images", fifo)
    start = time.monotonic()
    refused(capsys, log, "/trigger/images", "external raw storage")
    log2 = make_log(tmp_path / "zero.h5")
    with h5py.File(log2, "a") as f:  # 2^26 images on /dev/zero: would be 4 GiB
        del f["trigger/images"]
        f.create_dataset("trigger/images", shape=(2**26, 1, 8, 8), dtype="uint8",
                         external=[("/dev/zero", 0, h5py.h5f.UNLIMITED)])
    refused(capsys, log2, "/trigger/images", "external raw storage")
    assert time.monotonic() - start < 10


def test_links_and_virtual_datasets_are_refused(log, tmp_path, capsys) -> None:
    other = make_log(tmp_path / "other.h5")
    cases = {"external": (lambda f: f.__setitem__("landscapes", h5py.ExternalLink(str(other), "/stages")),
                          "/landscapes", "an external link"),
             "soft": (lambda f: f.__setitem__("extra", h5py.SoftLink("/trigger/images")), "/extra", "a soft link")}
    for name, (craft, where, why) in cases.items():
        p = make_log(tmp_path / f"{name}.h5")
        with h5py.File(p, "a") as f:
            craft(f)
        refused(capsys, p, where, why)
    p = make_log(tmp_path / "vds.h5")
    with h5py.File(p, "a") as f:
        layout = h5py.VirtualLayout(shape=(10,), dtype="int64")
        layout[:] = h5py.VirtualSource(str(other), "/data/splits/owner", shape=(10,))
        del f["data/splits/owner"]
        f.create_virtual_dataset("data/splits/owner", layout)
    refused(capsys, p, "/data/splits/owner", "a virtual dataset")


def test_a_writer_never_writes_through_an_external_link(log, tmp_path, capsys) -> None:
    """`/landscapes` as an ExternalLink to another log: `landscape` is refused and the other log unchanged."""
    other = make_log(tmp_path / "other.h5")
    with h5py.File(other, "a") as f:
        f.create_group("victim").attrs["x"] = 1
    before = other.read_bytes()
    with h5py.File(log, "a") as f:
        f["landscapes"] = h5py.ExternalLink(str(other), "/")
    code, err = cli(capsys, "landscape", str(log), "--kind", "line", "--models", "embed,embed", "--resolution", "3",
                    "-q", "--overwrite")
    assert code == 2 and "an external link" in err and str(log) in err
    from wmstudio.landscape import store

    with pytest.raises(RunLogError, match="an external link"):
        store.set_status(log, "victim", "failed")
    assert other.read_bytes() == before


# ------------------------------------------------------------------ item 2: declared shapes and dtypes

@pytest.mark.parametrize("name,shape,dtype,why", [
    ("/trigger/images", (2**26, 1, 8, 8), "uint8", "axis 0 holds 67,108,864"),
    ("/trigger/labels", (8,), "float64", "dtype float64 is not allowed"),
    ("/trigger/images", (8, 64), "uint8", "has 2 dimensions"),
    ("/data/splits/test", (5,), h5py.string_dtype(), "dtype object is not allowed"),
    ("/landscapes/p/metrics/test_acc", (40000, 40000), "float64", "more than the 10,000,000 values"),
    ("/stages/embed/weights/big", (2**40,), "float32", "memory budget"),
])
def test_declared_shapes_and_dtypes_are_checked_before_reading(log, capsys, name, shape, dtype, why) -> None:
    with h5py.File(log, "a") as f:
        if name in f:
            del f[name]
        f.create_dataset(name, shape=shape, dtype=dtype, chunks=True if np.prod(shape) > 1e6 else None)
    refused(capsys, log, name, why)


def test_unknown_filters_and_objects_are_refused(log, capsys) -> None:
    with h5py.File(log, "a") as f:
        f["dtype"] = np.dtype("int32")  # a named datatype: wmstudio never writes one
    refused(capsys, log, "/dtype", "an object of a kind wmstudio never writes")


# ------------------------------------------------------------------ attribute checksums

@pytest.mark.parametrize("group,key", [("/", "config_json"), ("/stages/embed", "config_json"),
                                       ("/data", "info_json"), ("/trigger", "params_json"),
                                       ("/stages/embed", "layer_names")])
def test_a_flipped_json_attribute_is_detected(log, capsys, group, key) -> None:
    with h5py.File(log, "a") as f:
        value = f[group].attrs[key]
        value = value.decode() if isinstance(value, bytes) else value
        f[group].attrs[key] = value[:1] + chr(ord(value[1]) ^ 1) + value[2:]  # one flipped bit
        assert f[group].attrs[key + "_crc32"] is not None
    with pytest.raises(RunLogError, match=f"attribute '{key}' is damaged \\(crc32 mismatch\\)"):
        r = RunLogReader(log)
        r.stages()
        r.data_info()
        r.trigger()


def test_random_bit_flips_in_attributes_never_change_config_json_silently(log, tmp_path) -> None:
    """300 single-bit flips in the first 20 KB (where the attributes are): config_json reads back exact or not at all."""
    data = log.read_bytes()
    with h5py.File(log, "r") as f:
        good = f.attrs["config_json"]
    rng = np.random.default_rng(7)
    case = tmp_path / "flip.h5"
    silent = 0
    for _ in range(300):
        b = bytearray(data)
        pos = int(rng.integers(0, min(20_000, len(b))))
        b[pos] ^= 1 << int(rng.integers(0, 8))
        case.write_bytes(bytes(b))
        try:
            got = RunLogReader(case).attrs.get("config_json")
        except RunLogError:
            continue
        silent += got != good
    assert silent == 0


# ------------------------------------------------------------------ item 5: values out of range

@pytest.mark.parametrize("craft,why", [
    (lambda f: f["trigger/labels"].__setitem__(0, 99), "/trigger/labels: labels from"),
    (lambda f: f["trigger/source_labels"].__setitem__(0, -7), "/trigger/source_labels"),
    (lambda f: f["data/splits/owner"].__setitem__(0, -3), "/data/splits/owner: negative index"),
    (lambda f: f["data/splits/attacker"].__setitem__(0, 1), "owner and attacker share images"),
    (lambda f: f["data"].attrs.__setitem__("info_json", json.dumps({"num_classes": "ten"})), "num_classes"),
    (lambda f: f["data"].attrs.__setitem__("info_json", json.dumps({"std": [0.0]})), "std"),
    (lambda f: f["data"].attrs.__setitem__("info_json", "[" * 200_000), "nested 200000 levels"),
    (lambda f: f["stages/embed"].attrs.__setitem__("config_json", "[" * 200_000 + "]" * 200_000), "nested"),
    (lambda f: f["stages/embed"].attrs.__setitem__("order", "first"), "'order': expected a whole number"),
    (lambda f: f["trigger"].attrs.__setitem__("seed", "x"), "seed (a whole number)"),
])
def test_out_of_range_values_are_one_clear_error(log, capsys, craft, why) -> None:
    with h5py.File(log, "a") as f:
        for g in ("data", "stages/embed"):  # crafted without checksums (as an old log would be)
            for k in [k for k in f[g].attrs if k.endswith("_crc32")]:
                del f[g].attrs[k]
        craft(f)
    with pytest.raises(RunLogError, match=why.replace("(", "\\(").replace(")", "\\)").replace("[", "\\[")):
        r = RunLogReader(log)
        r.stages()
        r.data_info()
        r.splits()
        r.trigger()
    code, err = cli(capsys, "inspect", str(log))
    assert code == 2 and err.count("wmstudio: error:") == 1


def test_a_trigger_shape_that_disagrees_with_the_data_record_is_refused(log) -> None:
    with h5py.File(log, "a") as f:
        del f["trigger/images"]
        f["trigger/images"] = np.zeros((8, 3, 4, 4), np.uint8)
    with pytest.raises(RunLogError, match="/trigger/images: shape \\(8, 3, 4, 4\\), expected \\(N, 1, 8, 8\\)"):
        RunLogReader(log).trigger()


def test_inspect_piped_into_head_exits_quietly(log) -> None:
    res = subprocess.run(f"{sys.executable} -m wmstudio inspect {log} | head -1", shell=True, cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.stdout.startswith("run log") and res.stderr == "", res.stderr


# ------------------------------------------------------------------ null-model files

def _null(path: Path, **changes: object) -> Path:
    from wmstudio.null_models import NullDistribution

    NullDistribution(np.array([0.1, 0.2]), np.array([1, 2]), 10, 10, "t").save(path)
    with h5py.File(path, "a") as f:
        for k, v in changes.items():
            if k in f:
                del f[k]
            if callable(v):
                v(f)
            elif k in ("n_triggers", "num_classes", "format", "version"):
                f.attrs[k] = v
            else:
                f[k] = v
    return path


@pytest.mark.parametrize("changes,why", [
    ({"correct": np.array([1, 99])}, "correct counts from 1 to 99"),
    ({"trigger_acc": np.array([0.1, 0.2, 0.3])}, "columns of different lengths"),
    ({"correct": np.array(["a", "b"], dtype=h5py.string_dtype())}, "dtype object is not allowed"),
    ({"n_triggers": "ten"}, "unreadable null distribution file"),
    ({"num_classes": 0}, "num_classes 0"),
    ({"seed": lambda f: f.create_dataset("seed", shape=(2,), dtype="int64",
                                         external=[("/dev/zero", 0, h5py.h5f.UNLIMITED)])}, "external raw storage"),
    ({"link": lambda f: f.__setitem__("link", h5py.ExternalLink("/etc/passwd", "/"))}, "an external link"),
])
def test_crafted_null_model_files_are_one_clear_error(tmp_path, changes, why) -> None:
    from wmstudio.null_models import NullDistribution

    p = _null(tmp_path / "null.h5", **changes)
    with pytest.raises(RunLogError, match=why) as info:
        NullDistribution.load(p)
    assert str(p) in str(info.value)


# ------------------------------------------------------------------ sweep folders

@pytest.mark.parametrize("meta,record,why", [
    ({"runs": "x"}, None, "runs: expected a list"),
    ({"runs": [{"run_id": "../../etc/passwd"}]}, None, "run_id: expected a plain file name"),
    ({"runs": [{"run_id": 5}]}, None, "run_id: expected a plain file name"),
    ({"runs": [{"run_id": "r1"}], "axes": []}, None, "axes: expected an object"),
    ({"runs": [{"run_id": "r1"}]}, {"status": 3}, "status: expected"),
    ({"runs": [{"run_id": "r1"}]}, {"status": "finished", "finals": {"x": "high"}}, "finals: expected"),
    ({"runs": [{"run_id": "r1"}]}, {"status": "failed", "error": ["x"]}, "error: expected text"),
    ({"runs": [{"run_id": "r1"}]}, {"run_id": "r2"}, "run_id: expected 'r1'"),
])
def test_crafted_sweep_folders_are_one_clear_error(tmp_path, capsys, meta, record, why) -> None:
    folder = tmp_path / "sweep"
    (folder / "runs").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps(meta))
    if record is not None:
        (folder / "runs" / "r1.json").write_text(json.dumps(record))
    from wmstudio.sweep.records import load_sweep_folder

    with pytest.raises(RunLogError, match=why):
        load_sweep_folder(folder)
    code, err = cli(capsys, "report", str(folder))
    assert code == 2 and why.split(":")[0] in err


def test_deep_json_in_a_sweep_folder_is_not_a_traceback(tmp_path, capsys) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.json").write_text("[" * 200_000 + "]" * 200_000)
    code, err = cli(capsys, "report", str(folder))
    assert code == 2 and "not a sweep folder" in err


# ------------------------------------------------------------------ export metadata

@pytest.mark.parametrize("meta,why", [
    ("[" * 200_000, "nested 200000 levels"),
    ("{bad", "not valid JSON"),
    ({"architecture": "x"}, "architecture: expected an object"),
    ({"architecture": {"arch": "small_cnn"}, "in_channels": 1, "image_size": 10**9, "num_classes": 10},
     "image_size: expected a whole number"),
    ({"architecture": {"arch": "small_cnn"}, "in_channels": 1, "image_size": 8, "num_classes": 10,
      "normalization": {"mean": [0.5], "std": "0.2"}}, "normalization.std"),  # degenerate values: verify's
    ({"architecture": {"arch": "small_cnn"}, "in_channels": 1, "image_size": 8, "num_classes": 10,
      "normalization": {"mean": ["0.5"], "std": [1.0]}}, "normalization.mean"),  # "cannot be verified"
    ({"architecture": {"arch": "small_cnn", "file": 3}, "in_channels": 1, "image_size": 8, "num_classes": 10},
     "architecture.file: expected text"),
])
def test_crafted_export_metadata_is_one_clear_error(meta, why) -> None:
    from wmstudio.export_schema import parse_export_metadata

    with pytest.raises(CheckpointError, match=why) as info:
        parse_export_metadata(meta, "suspect.safetensors")
    assert "suspect.safetensors" in str(info.value)


def test_export_metadata_written_by_export_model_passes(log, tmp_path) -> None:
    from wmstudio.export_model import export_metadata
    from wmstudio.export_schema import parse_export_metadata

    _, meta = export_metadata(log, "embed")
    assert parse_export_metadata(json.dumps(meta), "x") == meta


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_model_file_with_crafted_export_metadata_is_refused_when_loaded(tmp_path, suffix) -> None:
    """The schema is applied where a checkpoint is read, before verify or a run uses the metadata."""
    import torch
    from safetensors.torch import save_file

    from wmstudio.models.checkpoint import read_checkpoint

    path = tmp_path / f"suspect{suffix}"
    weights = {"w": torch.zeros(2)}
    meta = {"architecture": {"arch": "small_cnn", "file": ["/tmp/x.py"]}, "in_channels": 1, "image_size": 8,
            "num_classes": 10}
    if suffix == ".pt":
        torch.save({"state_dict": weights, "wmstudio": meta}, path)
    else:
        save_file(weights, str(path), metadata={"wmstudio": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=r"suspect.*architecture\.file: expected text"):
        read_checkpoint(path)
