"""Landscapes in the run log, under ``/landscapes/<name>`` (schema in docs/runlog.md).

Like the rest of the log, every write is one open-append-close commit: a surface interrupted at
any point is a valid partial surface (``done`` says which points hold values) and can be resumed.
Datasets carry checksums and commits check the free space first, as in ``wmstudio.runlog``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio import h5safe, safejson
from wmstudio.errors import RunLogError
from wmstudio.landscape.spec import LANDSCAPE_KINDS, LINE_METRICS, METRICS, LandscapeSpec
from wmstudio.log_file import create_dataset, open_log, read_dataset
from wmstudio.log_space import check_space
from wmstudio.runlog import now
from wmstudio.status import Status

GROUP = "landscapes"


def list_landscapes(path: str | Path) -> list[str]:
    with open_log(Path(path), "r") as f:
        return sorted(f[GROUP]) if GROUP in f else []


def create(path: str | Path, spec: LandscapeSpec, shape: tuple[int, ...], arrays: dict[str, np.ndarray],
           attrs: dict[str, Any]) -> None:
    """A new, empty landscape group (replacing one of the same name)."""
    n = int(np.prod(shape))
    check_space(Path(path), n * (8 * len(METRICS) + 1) + sum(np.asarray(v).nbytes for v in arrays.values()))
    with open_log(Path(path), "a") as f:
        root = f.require_group(GROUP)
        if spec.name in root:
            del root[spec.name]
        g = root.create_group(spec.name)
        h5safe.set_attrs(g, {"kind": spec.kind, "status": str(Status.RUNNING), "message": "", "created": now(), "finished": "",
                        "spec_json": spec.to_json(), "points_done": 0, "points_total": int(np.prod(shape)),
                        "seconds": 0.0})
        h5safe.set_attrs(g, {k: (json.dumps(v) if isinstance(v, (list, dict, tuple)) else v) for k, v in attrs.items()})
        m = g.create_group("metrics")
        for name in METRICS:
            create_dataset(m, name, np.full(shape, np.nan, dtype=np.float64))
        if LANDSCAPE_KINDS.get(spec.kind).straight_segment:  # the straight segment between the same ends, at the same t
            lm = g.create_group("line_metrics")
            for name in METRICS:
                create_dataset(lm, name, np.full(shape, np.nan, dtype=np.float64))
        create_dataset(g, "done", np.zeros(shape, dtype=bool))
        for k, v in arrays.items():
            create_dataset(g, k, v)


def commit_points(path: str | Path, name: str, indices: np.ndarray, values: dict[str, np.ndarray],
                  seconds: float) -> None:
    """Store the metrics of the points ``indices`` (a curve's ``values`` also hold its straight segment's,
    as ``line_<metric>``) and mark them done."""
    check_space(Path(path), 0)
    with open_log(Path(path), "a") as f:
        g = f[GROUP][name]
        shape = g["done"].shape
        done = read_dataset(g["done"]).reshape(-1)
        done[indices] = True
        g["done"][...] = done.reshape(shape)
        for m in METRICS:
            flat = read_dataset(g["metrics"][m]).reshape(-1)
            flat[indices] = values[m]
            g["metrics"][m][...] = flat.reshape(shape)
        for key in LINE_METRICS:
            if key in values and "line_metrics" in g:
                ds = g["line_metrics"][key[len("line_"):]]
                flat = read_dataset(ds).reshape(-1)
                flat[indices] = values[key]
                ds[...] = flat.reshape(shape)
        g.attrs["points_done"] = int(done.sum())
        g.attrs["seconds"] = float(g.attrs["seconds"]) + seconds


def set_attrs(path: str | Path, name: str, attrs: dict[str, str]) -> None:
    """Notes on how a landscape is evaluated (layout, BatchNorm folding, batch size), as attributes."""
    check_space(Path(path), 0, 64 << 10)
    with open_log(Path(path), "a") as f:
        h5safe.set_attrs(f[GROUP][name], attrs)


def set_status(path: str | Path, name: str, status: str, message: str = "") -> None:
    check_space(Path(path), 0, 64 << 10)
    with open_log(Path(path), "a") as f:
        f[GROUP][name].attrs.update({"status": str(status), "message": message, "finished": now()})


@dataclass
class Landscape:
    """A stored landscape, as read back (a partial one has NaN where ``done`` is False)."""

    name: str
    kind: str
    status: str
    spec: LandscapeSpec
    attrs: dict[str, Any]
    metrics: dict[str, np.ndarray]
    done: np.ndarray
    axes: dict[str, np.ndarray]  # x, y (2D) or t (line)
    model_names: list[str]
    model_coords: np.ndarray  # (k, 2) for 2D, (k,) for line
    trajectories: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # stage -> xy, residual, step
    line_metrics: dict[str, np.ndarray] = field(default_factory=dict)  # curve: the straight segment's metrics

    @property
    def is_2d(self) -> bool:
        """A grid, not a path (a kind this version does not know reads as a grid)."""
        return not (self.kind in LANDSCAPE_KINDS and LANDSCAPE_KINDS.get(self.kind).line)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())


def _attr(value: Any) -> Any:
    """Attributes as Python values: lists and dicts were stored as JSON text (size and depth bounded)."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return safejson.loads(value, "attribute", RunLogError)
        except RunLogError:
            return value
    return value


def read(path: str | Path, name: str) -> Landscape:
    with open_log(Path(path), "r") as f:
        if GROUP not in f or name not in f[GROUP]:
            have = sorted(f[GROUP]) if GROUP in f else []
            raise RunLogError(f"{path}: no landscape {name!r} (stored: {', '.join(have) or 'none'})")
        g = f[GROUP][name]
        raw = h5safe.read_attrs(g, path)
        for key in ("kind", "status", "spec_json"):
            if not isinstance(raw.get(key), str):
                raise RunLogError(f"{path}: /{GROUP}/{name} attribute {key!r}: expected text, got {raw.get(key)!r:.60}")
        attrs = {k: _attr(v) for k, v in raw.items()}
        names = attrs.get("model_names", [])
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise RunLogError(f"{path}: /{GROUP}/{name} attribute 'model_names': expected a JSON list of names")
        axes = {k: read_dataset(g[k]) for k in ("x", "y", "t", "segment", "frac") if k in g}
        traj: dict[str, dict[str, np.ndarray]] = {}
        if "trajectory" in g:
            for stage in g["trajectory"]:
                traj[stage] = {k: read_dataset(g["trajectory"][stage][k]) for k in g["trajectory"][stage]}
        line = {m: read_dataset(g["line_metrics"][m]) for m in METRICS} if "line_metrics" in g else {}
        return Landscape(name, str(attrs["kind"]), str(attrs["status"]), LandscapeSpec.from_json(raw["spec_json"]),
                         attrs, {m: read_dataset(g["metrics"][m]) for m in METRICS}, read_dataset(g["done"]), axes,
                         list(attrs.get("model_names", [])),
                         read_dataset(g["model_coords"]) if "model_coords" in g else np.zeros((0, 2)), traj, line)


def read_vectors(path: str | Path, name: str) -> dict[str, np.ndarray]:
    """The stored origin and directions of a landscape, or a curve's bend (large: read only when needed)."""
    with open_log(Path(path), "r") as f:
        g = f[GROUP][name]
        return {k: read_dataset(g[k]) for k in ("origin", "directions", "bend") if k in g}


def write_trajectories(path: str | Path, name: str, trajectories: dict[str, dict[str, np.ndarray]]) -> None:
    check_space(Path(path), sum(np.asarray(v).nbytes for a in trajectories.values() for v in a.values()))
    with open_log(Path(path), "a") as f:
        g = f[GROUP][name]
        if "trajectory" in g:
            del g["trajectory"]
        t = g.create_group("trajectory")
        for stage, arrays in trajectories.items():
            s = t.create_group(stage)
            for k, v in arrays.items():
                create_dataset(s, k, v)
