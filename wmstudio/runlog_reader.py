"""Reading a run log: ``RunLogReader`` (stages, rows, weights, split, trigger set) and checkpoint warnings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from wmstudio import h5safe, safejson
from wmstudio.errors import RunLogError
from wmstudio.log_file import open_log, read_dataset
from wmstudio.runlog import check_format
from wmstudio.runlog_schema import (
    check_data_info,
    check_splits,
    check_stage_attrs,
    check_trigger,
)


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
    drift_reference: str = ""  # what the stage's drift is measured from ("" in logs that do not say)
    # the Hessian curvature measured of the stage's final model (wmstudio.curvature.job): key -> result
    curvature: dict[str, dict[str, Any]] = field(default_factory=dict)

    def final(self, column: str) -> float:
        values = self.eval.get(column)
        return float(values[-1]) if values is not None and len(values) else float("nan")


class RunLogReader:
    """Reads a run log; safe on a log that another process is still writing.

    The file is data from whoever wrote it: every open checks it against the format (``open_log``),
    JSON attributes are parsed with bounded size and depth and their checksums verified, and the
    values (labels, splits, the data record) are checked before they are returned.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RunLogError(f"{self.path}: no such run log")
        with self._open() as f:
            check_format(self.path, f.attrs)
            self.attrs = h5safe.read_attrs(f, self.path)

    @contextmanager
    def _open(self) -> Iterator[h5py.File]:
        with open_log(self.path, "r") as f:
            yield f

    def _json(self, text: Any, where: str) -> Any:
        return safejson.loads(text.decode() if isinstance(text, bytes) else text, f"{self.path}: {where}", RunLogError)

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def config_json(self) -> str:
        """The run's config as JSON text (checked to parse: a damaged attribute is a ``RunLogError``)."""
        text = str(self.attrs.get("config_json", "{}"))
        try:
            safejson.loads(text, "config_json", RunLogError)
        except RunLogError as exc:
            raise RunLogError(f"{self.path}: damaged or not a complete run log ({exc})") from None
        return text

    def has(self, name: str) -> bool:
        """Whether the log holds the group or dataset ``name`` (e.g. "trigger": a run may stop before it)."""
        with self._open() as f:
            return name in f

    def _order(self, stages: h5py.Group, name: str) -> int:
        value = stages[name].attrs.get("order", 0)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise RunLogError(f"{self.path}: /stages/{name} attribute 'order': expected a whole number, got {value!r:.60}")
        return int(value)

    def stage_names(self) -> list[str]:
        with self._open() as f:
            stages = f["stages"]
            return sorted(stages, key=lambda n: self._order(stages, n))

    def stage(self, name: str) -> StageRecord:
        with self._open() as f:
            return self._stage_in(f, name)

    def _stage_in(self, f: h5py.File, name: str, since: tuple[int, int, int] = (0, 0, 0)) -> StageRecord:
        """One stage; ``since``: (train, eval, layer) rows already held, so only the rows after them are read."""
        if name not in f["stages"]:
            raise RunLogError(f"{self.path}: no stage {name!r}; stages: {', '.join(f['stages'])}")
        g = f["stages"][name]
        a = h5safe.read_attrs(g, self.path)
        check_stage_attrs(self.path, name, a)
        config = self._json(a["config_json"], f"/stages/{name} config_json")
        layer_names = self._json(a["layer_names"], f"/stages/{name} layer_names")
        if not isinstance(config, dict) or not (isinstance(layer_names, list) and all(isinstance(x, str) for x in layer_names)):
            raise RunLogError(f"{self.path}: /stages/{name}: config_json must be a JSON object and layer_names a "
                              "JSON list of names")
        layers = g["layers"]
        t0, e0, l0 = since

        def rows(ds: h5py.Dataset, start: int) -> np.ndarray:
            return read_dataset(ds) if start == 0 else ds[start:]  # arrays are fletcher32-checked per chunk

        empty = np.zeros((0, 0), np.float32)
        return StageRecord(
            name, int(a["order"]), str(a["status"]), str(a["message"]), config,
            {k: rows(g["train"][k], t0) for k in g["train"]}, {k: rows(g["eval"][k], e0) for k in g["eval"]},
            layer_names,
            rows(layers["l2"], l0) if "l2" in layers else empty, rows(layers["cos"], l0) if "cos" in layers else empty,
            "weights" in g, int(g["trajectory"].shape[0]) if "trajectory" in g else 0,
            str(a["drift_reference"]) if "drift_reference" in a else "",
            self._curvature(a, name))

    def _curvature(self, attrs: dict[str, Any], stage: str) -> dict[str, dict[str, Any]]:
        """A stage's curvature results (key -> result; entries that are not JSON objects left out); {} when none
        were measured."""
        from wmstudio.curvature.spec import ATTR

        if ATTR not in attrs:
            return {}
        held = self._json(attrs[ATTR], f"/stages/{stage} {ATTR}")
        if not isinstance(held, dict):
            raise RunLogError(f"{self.path}: /stages/{stage} {ATTR}: expected a JSON object of results (key -> object)")
        return {k: v for k, v in held.items() if isinstance(v, dict)}  # an entry that is no result says nothing

    def stages(self, since: dict[str, tuple[int, int, int]] | None = None) -> list[StageRecord]:
        """Every stage in run order, read in one opening of the file. ``since``: per stage name, the
        (train, eval, layer) rows already held; only newer rows are read (following a growing log)."""
        since = since or {}
        with self._open() as f:
            stages = f["stages"]
            names = sorted(stages, key=lambda n: self._order(stages, n))
            return [self._stage_in(f, n, since.get(n, (0, 0, 0))) for n in names]

    def weights(self, stage: str) -> dict[str, torch.Tensor]:
        with self._open() as f:
            if stage not in f["stages"] or "weights" not in f["stages"][stage]:
                raise RunLogError(f"{self.path}: stage {stage!r} has no saved weights")
            w = f["stages"][stage]["weights"]
            return {k: torch.from_numpy(np.array(read_dataset(w[k]))) for k in w}

    def weights_status(self, stage: str) -> tuple[bool, bool, str]:
        """(has weights, weights are partial: the stage was cancelled or failed, the stage's status)."""
        with self._open() as f:
            g = f["stages"][stage]
            has = "weights" in g
            partial = bool(g["weights"].attrs.get("partial", False)) if has else False
            return has, partial, str(g.attrs.get("status", "unknown"))

    def stage_json(self, stage: str, key: str) -> Any:
        with self._open() as f:
            value = h5safe.text_attr(f["stages"][stage], key, self.path)
            return self._json(value, f"/stages/{stage} {key}") if value is not None else None

    def trajectory(self, stage: str) -> np.ndarray:
        with self._open() as f:
            g = f["stages"][stage]
            return read_dataset(g["trajectory"]) if "trajectory" in g else np.zeros((0, 0), np.float32)

    def splits(self) -> dict[str, np.ndarray]:
        with self._open() as f:
            out = {k: read_dataset(v) for k, v in f["data"]["splits"].items()}
        missing = [k for k in ("owner", "attacker", "test") if k not in out]
        if missing:
            raise RunLogError(f"{self.path}: damaged or not a complete run log (/data/splits lacks {', '.join(missing)})")
        check_splits(self.path, out)
        return out

    def data_info(self) -> dict[str, Any]:
        with self._open() as f:
            return self._data_info_in(f)

    def working_dir(self) -> str:
        """The folder the run was started in, which its config's relative data paths are read against
        (``config_io.anchor_paths``); "" where the log does not say (written before it was recorded)."""
        try:
            wd = self.data_info().get("working_dir", "")
        except KeyError:
            return ""
        return wd if isinstance(wd, str) else ""

    def _data_info_in(self, f: h5py.File) -> dict[str, Any]:
        text = h5safe.text_attr(f["data"], "info_json", self.path)
        if text is None:
            raise KeyError("info_json")
        return check_data_info(self.path, self._json(text, "/data info_json"))

    def trigger_set(self):  # noqa: ANN201 - a wmstudio.triggers.TriggerSet (imported lazily: triggers import torch models)
        """The stored trigger set as a TriggerSet."""
        from wmstudio.triggers import TriggerSet

        t = self.trigger()
        control = t.get("control_images")
        return TriggerSet(torch.from_numpy(t["images"]), torch.from_numpy(t["labels"]),
                          torch.from_numpy(t["source_labels"]), str(t["scheme"]), int(t["seed"]), t["params"],
                          torch.from_numpy(control) if control is not None else None,
                          str(t.get("control_kind", "")) if control is not None else "")

    def trigger(self, images: bool = True) -> dict[str, Any]:
        """The stored trigger set: images (unless ``images=False``: ``image_shape`` only), labels,
        source labels, scheme, seed and params, checked against each other and the data record."""
        with self._open() as f:
            g = f["trigger"]
            info = self._data_info_in(f) if "data" in f and "info_json" in f["data"].attrs else {}
            shape = tuple(g["images"].shape)
            expected = tuple(info.get("shape", ()))
            if expected and shape[1:] != expected:
                raise RunLogError(f"{self.path}: /trigger/images: shape {shape}, expected (N, {', '.join(map(str, expected))}) "
                                  "as the data record says")
            a = h5safe.read_attrs(g, self.path)
            seed = a.get("seed")
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not isinstance(
                    a.get("scheme"), str):
                raise RunLogError(f"{self.path}: /trigger: attributes scheme (text) and seed (a whole number) expected, "
                                  f"got {a.get('scheme')!r:.40} and {seed!r:.40}")
            params = self._json(a.get("params_json", "{}"), "/trigger params_json")
            labels, source = read_dataset(g["labels"]), read_dataset(g["source_labels"])
            pixels = read_dataset(g["images"]) if images else np.zeros((shape[0], 0), np.uint8)
            check_trigger(self.path, pixels, labels, source, info.get("num_classes"))
            out = {"images": pixels, "labels": labels, "source_labels": source, "scheme": a["scheme"],
                   "seed": int(seed), "params": params if isinstance(params, dict) else {}}
            if not images:
                out["image_shape"] = shape
            if "control_images" in g:  # absent in logs written before controls were recorded
                if tuple(g["control_images"].shape) != shape:
                    raise RunLogError(f"{self.path}: /trigger/control_images has shape {tuple(g['control_images'].shape)}, "
                                      f"expected the trigger images' {shape}")
                kind = a.get("control_kind", "matched")
                out["control_kind"] = kind if kind in ("paired", "matched") else "matched"
                if images:
                    out["control_images"] = read_dataset(g["control_images"])
            return out


def checkpoint_warnings(spec: str | Path) -> list[str]:
    """Warnings for using ``RUN.h5[:STAGE]`` as a checkpoint: partial weights of a cancelled or failed stage.

    Such weights load (a cancelled run's model is a legitimate starting point), but never silently.
    Anything that is not a run log reference gives no warnings.
    """
    text = str(spec)
    has_stage = ".h5:" in text or ".hdf5:" in text
    if not has_stage and not text.endswith((".h5", ".hdf5")):
        return []
    log_path, _, stage = text.rpartition(":") if has_stage else (text, "", "")
    try:
        reader = RunLogReader(Path(log_path).expanduser())
        status = {n: reader.weights_status(n) for n in reader.stage_names()}
    except (RunLogError, KeyError):
        return []  # the load itself reports a broken log
    if not stage:
        stage = next((n for n in reversed(status) if status[n][0]), "")
    has, partial, stage_status = status.get(stage, (False, False, ""))
    if not (has and partial):
        return []
    return [f"{log_path}:{stage}: partial weights: the stage ended '{stage_status}' before it finished; "
            "the model starts from where it stopped"]
