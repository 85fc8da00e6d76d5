"""The HDF5 run log: one file per experiment (schema in docs/runlog.md).

Crash safety: the writer opens the file, appends, and closes it again at every commit (each
evaluation, stage boundary and status change). Between commits the file is closed and consistent,
so a killed or crashed run leaves everything up to its last evaluation readable, and another
process (the app, ``wmstudio inspect``) can read it while the run goes on.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

import wmstudio
from wmstudio.errors import RunLogError

FORMAT = "wmstudio-runlog"
FORMAT_VERSION = 1
TRAIN_COLUMNS = ("global_step", "epoch", "loss", "lr")
EVAL_COLUMNS = ("global_step", "epoch", "test_loss", "test_acc", "trigger_loss", "trigger_acc",
                "drift_l2", "drift_rel", "drift_cos", "p_value")


def library_versions() -> dict[str, str]:
    import torchvision

    return {"wmstudio": wmstudio.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
            "python": sys.version.split()[0], "platform": platform.platform()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@contextmanager
def _advisory_lock(path: Path, exclusive: bool) -> Iterator[None]:
    """An flock on the log while it is open: commits are exclusive, reads shared.

    HDF5's own file locking is off (``locking=False``) so that a reader never fails because a
    writer exists; this lock only keeps a reader from opening the file in the middle of a commit
    (e.g. landscape workers reading the log while their driver writes points into it).
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): commits are short, readers retry
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield  # not created yet: nobody can be reading it
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def _open(path: Path, mode: str) -> Iterator[h5py.File]:
    with _advisory_lock(path, exclusive=mode != "r"):
        try:
            f = h5py.File(path, mode, locking=False)
        except OSError as exc:
            raise RunLogError(f"{path}: cannot open as HDF5 ({exc})") from exc
        try:
            yield f
        finally:
            f.close()


open_log = _open  # public name: the landscape store commits to the same file the same way


def _append(group: h5py.Group, name: str, values: np.ndarray) -> None:
    values = np.asarray(values)
    if name not in group:
        group.create_dataset(name, data=values, maxshape=(None, *values.shape[1:]),
                             chunks=(max(1, min(1024, 2 ** 20 // max(1, values[0:1].nbytes))), *values.shape[1:]))
        return
    ds = group[name]
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


class RunLogWriter:
    """Appends to a run log. Every public method is one open-write-close commit."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, config_toml: str, config_json: str, run_name: str, device: str) -> RunLogWriter:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with _open(p, "w") as f:
            f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "created": _now(),
                            "status": "running", "status_message": "", "run_name": run_name, "device": device,
                            "config_toml": config_toml, "config_json": config_json})
            for k, v in library_versions().items():
                f.attrs[f"version_{k}"] = str(v)
            f.create_group("stages")
        return cls(p)

    def write_data(self, info: dict[str, Any], splits: dict[str, np.ndarray]) -> None:
        with _open(self.path, "a") as f:
            g = f.require_group("data")
            g.attrs["info_json"] = json.dumps(info)
            s = g.require_group("splits")
            for k, v in splits.items():
                if k in s:
                    del s[k]
                s.create_dataset(k, data=np.asarray(v, dtype=np.int64))

    def write_trigger(self, images: np.ndarray, labels: np.ndarray, source_labels: np.ndarray, scheme: str,
                      seed: int, params: dict[str, Any]) -> None:
        with _open(self.path, "a") as f:
            if "trigger" in f:
                del f["trigger"]
            g = f.create_group("trigger")
            g.create_dataset("images", data=images, compression="gzip")
            g.create_dataset("labels", data=labels.astype(np.int64))
            g.create_dataset("source_labels", data=source_labels.astype(np.int64))
            g.attrs.update({"scheme": scheme, "seed": seed, "params_json": json.dumps(params)})

    def begin_stage(self, name: str, order: int, config: dict[str, Any], epochs: int, steps_per_epoch: int,
                    layer_names: list[str], drift_reference: str) -> None:
        with _open(self.path, "a") as f:
            stages = f["stages"]
            if name in stages:
                del stages[name]
            g = stages.create_group(name)
            g.attrs.update({"order": order, "status": "running", "started": _now(), "finished": "",
                            "message": "", "config_json": json.dumps(config), "epochs": epochs,
                            "steps_per_epoch": steps_per_epoch, "layer_names": json.dumps(layer_names),
                            "drift_reference": drift_reference})
            g.create_group("train")
            g.create_group("eval")
            g.create_group("layers")

    def append(self, stage: str, train_rows: list[tuple[float, ...]], eval_row: dict[str, float] | None = None,
               layer_l2: list[float] | None = None, layer_cos: list[float] | None = None,
               flat_weights: np.ndarray | None = None) -> None:
        """Commit buffered training steps and (optionally) one evaluation row."""
        with _open(self.path, "a") as f:
            g = f["stages"][stage]
            if train_rows:
                cols = np.asarray(train_rows, dtype=np.float64)
                for i, col in enumerate(TRAIN_COLUMNS):
                    _append(g["train"], col, cols[:, i].astype(np.int64) if col == "global_step" else cols[:, i])
            if eval_row is not None:
                for col in EVAL_COLUMNS:
                    value = eval_row.get(col, float("nan"))
                    _append(g["eval"], col, np.array([value], dtype=np.int64 if col == "global_step" else np.float64))
            if layer_l2 is not None:
                _append(g["layers"], "l2", np.asarray([layer_l2], dtype=np.float32))
                _append(g["layers"], "cos", np.asarray([layer_cos], dtype=np.float32))
            if flat_weights is not None:
                _append(g, "trajectory", flat_weights[None].astype(np.float32))

    def save_weights(self, stage: str, state_dict: dict[str, torch.Tensor], partial: bool = False) -> str:
        with _open(self.path, "a") as f:
            g = f["stages"][stage]
            if "weights" in g:
                del g["weights"]
            w = g.create_group("weights")
            w.attrs["partial"] = partial
            for k, v in state_dict.items():
                w.create_dataset(k, data=v.detach().cpu().numpy())
        return f"{self.path}:/stages/{stage}/weights"

    def end_stage(self, stage: str, status: str, message: str = "") -> None:
        with _open(self.path, "a") as f:
            f["stages"][stage].attrs.update({"status": status, "finished": _now(), "message": message})

    def set_stage_json(self, stage: str, key: str, value: Any) -> None:
        """A JSON attribute on a stage (e.g. the certified watermark's verification)."""
        with _open(self.path, "a") as f:
            f["stages"][stage].attrs[key] = json.dumps(value)

    def set_status(self, status: str, message: str = "") -> None:
        with _open(self.path, "a") as f:
            f.attrs.update({"status": status, "status_message": message, "finished": _now()})


# ---------------------------------------------------------------- reading

@dataclass
class StageRecord:
    name: str
    order: int
    status: str
    message: str
    config: dict[str, Any]
    train: dict[str, np.ndarray]
    eval: dict[str, np.ndarray]
    layer_names: list[str]
    layer_l2: np.ndarray
    layer_cos: np.ndarray
    has_weights: bool
    trajectory_rows: int

    def final(self, column: str) -> float:
        values = self.eval.get(column)
        return float(values[-1]) if values is not None and len(values) else float("nan")


class RunLogReader:
    """Reads a run log; safe on a log that another process is still writing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RunLogError(f"{self.path}: no such run log")
        with self._open() as f:
            if f.attrs.get("format") != FORMAT:
                raise RunLogError(f"{self.path}: not a wmstudio run log (no format='{FORMAT}' attribute)")
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}

    @contextmanager
    def _open(self) -> Iterator[h5py.File]:
        with _open(self.path, "r") as f:
            yield f

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def config_json(self) -> str:
        return str(self.attrs.get("config_json", "{}"))

    def stage_names(self) -> list[str]:
        with self._open() as f:
            stages = f["stages"]
            return sorted(stages, key=lambda n: int(stages[n].attrs.get("order", 0)))

    def stage(self, name: str) -> StageRecord:
        with self._open() as f:
            if name not in f["stages"]:
                raise RunLogError(f"{self.path}: no stage {name!r}; stages: {', '.join(f['stages'])}")
            g = f["stages"][name]
            a = g.attrs
            layers = g["layers"]
            return StageRecord(
                name, int(a["order"]), str(a["status"]), str(a["message"]), json.loads(a["config_json"]),
                {k: g["train"][k][()] for k in g["train"]}, {k: g["eval"][k][()] for k in g["eval"]},
                json.loads(a["layer_names"]),
                layers["l2"][()] if "l2" in layers else np.zeros((0, 0), np.float32),
                layers["cos"][()] if "cos" in layers else np.zeros((0, 0), np.float32),
                "weights" in g, int(g["trajectory"].shape[0]) if "trajectory" in g else 0)

    def stages(self) -> list[StageRecord]:
        return [self.stage(n) for n in self.stage_names()]

    def weights(self, stage: str) -> dict[str, torch.Tensor]:
        with self._open() as f:
            if stage not in f["stages"] or "weights" not in f["stages"][stage]:
                raise RunLogError(f"{self.path}: stage {stage!r} has no saved weights")
            w = f["stages"][stage]["weights"]
            return {k: torch.from_numpy(np.array(w[k])) for k in w}

    def stage_json(self, stage: str, key: str) -> Any:
        with self._open() as f:
            value = f["stages"][stage].attrs.get(key)
            return json.loads(value) if value is not None else None

    def trajectory(self, stage: str) -> np.ndarray:
        with self._open() as f:
            g = f["stages"][stage]
            return g["trajectory"][()] if "trajectory" in g else np.zeros((0, 0), np.float32)

    def splits(self) -> dict[str, np.ndarray]:
        with self._open() as f:
            return {k: v[()] for k, v in f["data"]["splits"].items()}

    def data_info(self) -> dict[str, Any]:
        with self._open() as f:
            return json.loads(f["data"].attrs["info_json"])

    def trigger_set(self):  # noqa: ANN201 - a wmstudio.triggers.TriggerSet (imported lazily: triggers import torch models)
        """The stored trigger set as a TriggerSet."""
        from wmstudio.triggers import TriggerSet

        t = self.trigger()
        return TriggerSet(torch.from_numpy(t["images"]), torch.from_numpy(t["labels"]),
                          torch.from_numpy(t["source_labels"]), str(t["scheme"]), int(t["seed"]), t["params"])

    def trigger(self) -> dict[str, Any]:
        with self._open() as f:
            g = f["trigger"]
            return {"images": g["images"][()], "labels": g["labels"][()], "source_labels": g["source_labels"][()],
                    "scheme": g.attrs["scheme"], "seed": int(g.attrs["seed"]), "params": json.loads(g.attrs["params_json"])}
