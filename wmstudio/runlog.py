"""The HDF5 run log: one file per experiment (schema in docs/runlog.md): its format and ``RunLogWriter``.

Its parts, one a module: opening a log for one commit or read and its checksummed datasets
(``wmstudio.log_file``), the one-writer lock (``wmstudio.log_lock``), room on the disk
(``wmstudio.log_space``), reading (``wmstudio.runlog_reader``); during a run the writer is driven by
``wmstudio.run_recorder`` from the run's events.

Crash safety: the writer opens the file, appends, and closes it again at every commit (each
evaluation, stage boundary and status change). Between commits the file is closed and consistent,
so a killed or crashed run leaves everything up to its last evaluation readable, and another
process (the app, ``wmstudio inspect``) can read it while the run goes on.

Hostile conditions, each ending in one ``RunLogError`` that names the file:

- an existing log is never replaced unless the caller asks (``overwrite=True``);
- one writer at a time: ``RunLogWriter`` holds an advisory lock on ``<log>.lock`` for the whole run
  (readers never take it, so they keep working while a run writes), and on a local filesystem an
  OFD lock on the log itself, so removing the lock file does not let a second writer in; every
  commit first checks that the lock file and the log are still the ones locked (``WriterLock.check``);
- a new log is written aside and renamed into place (``safe_files.atomic_output``), and neither the
  log nor its lock file is ever opened through a symbolic link;
- a commit that would not fit on the disk is refused before HDF5 writes anything (HDF5 does not
  survive a write failure halfway through a commit), so the log keeps everything committed so far
  and there is room left to mark it failed;
- every dataset carries a checksum (HDF5's fletcher32 filter; a ``crc32`` attribute on scalars),
  so damaged data is named on read instead of being used;
- a log of a newer or unknown ``format_version`` is refused with the version named.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

import wmstudio
from wmstudio import h5safe
from wmstudio.errors import OutputError, RunLogError
from wmstudio.log_file import create_dataset, open_log, short_error
from wmstudio.log_lock import WriterLock
from wmstudio.log_space import STATUS_RESERVE, check_space
from wmstudio.metric_names import EVAL_COLUMNS
from wmstudio.status import Status

FORMAT = "wmstudio-runlog"
FORMAT_VERSION = 2  # 2: checksums on every dataset; 1 (no checksums) is still read
READABLE_VERSIONS = (1, 2)
TRAIN_COLUMNS = ("global_step", "epoch", "loss", "lr")


def library_versions() -> dict[str, str]:
    import torchvision

    return {"wmstudio": wmstudio.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
            "python": sys.version.split()[0], "platform": platform.platform()}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _append(group: h5py.Group, name: str, values: np.ndarray) -> None:
    values = np.asarray(values)
    if name not in group:
        group.create_dataset(name, data=values, maxshape=(None, *values.shape[1:]), fletcher32=True,
                             chunks=(max(1, min(1024, 2 ** 20 // max(1, values[0:1].nbytes))), *values.shape[1:]))
        return
    ds = group[name]
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


def check_format(path: Path, attrs: Any) -> None:
    """Refuse a file that is not a run log, or one written in a format version this code cannot read."""
    if attrs.get("format") != FORMAT:
        raise RunLogError(f"{path}: not a wmstudio run log (no format='{FORMAT}' attribute)")
    version = attrs.get("format_version")
    if isinstance(version, np.generic):
        version = version.item()
    if isinstance(version, bytes):
        version = version.decode(errors="replace")
    try:
        known = int(version) in READABLE_VERSIONS and float(version) == int(version)
    except (TypeError, ValueError):
        known = False
    if not known:
        newest = max(READABLE_VERSIONS)
        hint = (f"newer than this wmstudio reads (up to {newest}); update wmstudio"
                if isinstance(version, int) and version > newest else f"readable versions: "
                f"{', '.join(map(str, READABLE_VERSIONS))}")
        raise RunLogError(f"{path}: run log format_version {version!r} is unknown: {hint}")


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """Never replace a log unless asked, nor write one through a link or over a folder: the rules of every
    output (``safe_files.check_target``), as one ``RunLogError`` naming the file."""
    from wmstudio.safe_files import check_target

    try:
        check_target(path, overwrite)
    except OutputError as exc:
        raise RunLogError(str(exc)) from exc


class RunLogWriter:
    """Appends to a run log. Every public method is one open-write-close commit.

    A writer made by ``create`` holds the log's ``WriterLock`` until ``close()``.
    """

    def __init__(self, path: str | Path, lock: WriterLock | None = None) -> None:
        self.path = Path(path)
        self.lock = lock

    @classmethod
    def create(cls, path: str | Path, config_toml: str, config_json: str, run_name: str, device: str,
               overwrite: bool = False) -> RunLogWriter:
        """A new log at ``path``, locked for this writer. An existing file is refused unless ``overwrite``."""
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunLogError(f"{p}: cannot create its folder ({short_error(exc)})") from exc
        from wmstudio.safe_files import atomic_output

        lock = WriterLock(p).acquire()
        try:
            refuse_existing(p, overwrite)
            check_space(p, 0)
            with atomic_output(p, overwrite) as tmp, open_log(tmp, "w") as f:  # written aside, renamed: no link
                h5safe.set_attrs(f, {"format": FORMAT, "format_version": FORMAT_VERSION, "created": now(),
                                     "status": str(Status.RUNNING), "status_message": "", "run_name": run_name,
                                     "device": device, "config_toml": config_toml, "config_json": config_json})
                for k, v in library_versions().items():
                    f.attrs[f"version_{k}"] = str(v)
                f.create_group("stages")
            lock.hold_log()
        except BaseException:
            lock.release()
            raise
        return cls(p, lock)

    def _commit(self) -> Any:
        """One append commit (``open_log(path, "a")``), after checking that this writer still owns the log."""
        if self.lock is not None:
            self.lock.check()
        return open_log(self.path, "a")

    def close(self) -> None:
        """Release the writer's lock (the file itself is closed after every commit)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def write_data(self, info: dict[str, Any], splits: dict[str, np.ndarray]) -> None:
        check_space(self.path, sum(np.asarray(v).size * 8 for v in splits.values()))
        with self._commit() as f:
            g = f.require_group("data")
            h5safe.set_attrs(g, {"info_json": json.dumps(info)})
            s = g.require_group("splits")
            for k, v in splits.items():
                if k in s:
                    del s[k]
                create_dataset(s, k, np.asarray(v, dtype=np.int64))

    def write_trigger(self, images: np.ndarray, labels: np.ndarray, source_labels: np.ndarray, scheme: str,
                      seed: int, params: dict[str, Any], control_images: np.ndarray | None = None,
                      control_kind: str = "") -> None:
        extra = control_images.nbytes if control_images is not None else 0
        check_space(self.path, images.nbytes + labels.nbytes + source_labels.nbytes + extra)
        with self._commit() as f:
            if "trigger" in f:
                del f["trigger"]
            g = f.create_group("trigger")
            create_dataset(g, "images", images, compression="gzip")
            create_dataset(g, "labels", labels.astype(np.int64))
            create_dataset(g, "source_labels", source_labels.astype(np.int64))
            if control_images is not None:
                create_dataset(g, "control_images", control_images, compression="gzip")
            h5safe.set_attrs(g, {"scheme": scheme, "seed": seed, "params_json": json.dumps(params),
                                 "control_kind": control_kind if control_images is not None else ""})

    def begin_stage(self, name: str, order: int, config: dict[str, Any], epochs: int, steps_per_epoch: int,
                    layer_names: list[str], drift_reference: str) -> None:
        check_space(self.path, 0)
        with self._commit() as f:
            stages = f["stages"]
            if name in stages:
                del stages[name]
            g = stages.create_group(name)
            h5safe.set_attrs(g, {"order": order, "status": str(Status.RUNNING), "started": now(), "finished": "",
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
        nbytes = len(train_rows) * 8 * len(TRAIN_COLUMNS) + 8 * len(EVAL_COLUMNS) + 8 * len(layer_l2 or [])
        check_space(self.path, nbytes + (flat_weights.size * 4 if flat_weights is not None else 0))
        with self._commit() as f:
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

    def save_weights(self, stage: str, state_dict: dict[str, torch.Tensor | np.ndarray], partial: bool = False) -> str:
        arrays = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                  for k, v in state_dict.items()}
        check_space(self.path, sum(a.nbytes for a in arrays.values()))
        with self._commit() as f:
            g = f["stages"][stage]
            if "weights" in g:
                del g["weights"]
            w = g.create_group("weights")
            w.attrs["partial"] = partial
            for k, a in arrays.items():
                create_dataset(w, k, a)
        return f"{self.path}:/stages/{stage}/weights"

    def end_stage(self, stage: str, status: str, message: str = "") -> None:
        check_space(self.path, 0, STATUS_RESERVE)
        with self._commit() as f:
            f["stages"][stage].attrs.update({"status": str(status), "finished": now(), "message": message})

    def set_stage_json(self, stage: str, key: str, value: Any) -> None:
        """A JSON attribute on a stage (e.g. the certified watermark's verification)."""
        check_space(self.path, 0, STATUS_RESERVE)
        with self._commit() as f:
            h5safe.set_attrs(f["stages"][stage], {key: json.dumps(value)})

    def set_run_json(self, key: str, value: Any) -> None:
        """A JSON attribute of the whole run (``model_json``: where the model came from)."""
        check_space(self.path, 0, STATUS_RESERVE)
        with self._commit() as f:
            h5safe.set_attrs(f, {key: json.dumps(value)})

    def set_status(self, status: str, message: str = "") -> None:
        check_space(self.path, len(message), STATUS_RESERVE)
        with self._commit() as f:
            f.attrs.update({"status": str(status), "status_message": message, "finished": now()})
