"""Shipped base models: trained weights every experiment can start from (``model.checkpoint = "base:NAME"``).

Each lives in ``resources/base_models/`` as ``NAME.safetensors`` with a card ``NAME.json`` beside it:
the weights' SHA-256, the recipe (``NAME.toml``, with its SHA-256), the data split (seed, sizes and a
hash of the owner's and the attacker's indices), the test accuracy, the training time, precision,
threads and library versions. ``wmstudio base-model train RECIPE`` trains a recipe's clean stage and
writes both files; ``--check`` retrains into a scratch folder and compares the weights' hash with the
shipped card (bit-for-bit where the platform, thread count and library versions are the same).

A ``base:`` checkpoint is checked against its card's hash before it is used, so a damaged or
swapped file is refused instead of silently starting the experiment from other weights.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.errors import CheckpointError, ConfigError

PREFIX = "base:"
FOLDER = "base_models"
CARD_FORMAT = "wmstudio-base-model"
CARD_VERSION = 1
STAGE = "pretrain"  # the recipe's clean training stage, whose weights become the base model
_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 already checked


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder() -> Path:
    """``resources/base_models`` (``$WMSTUDIO_BASE_MODELS`` instead where set, e.g. for a private collection)."""
    import os

    if os.environ.get("WMSTUDIO_BASE_MODELS"):
        return Path(os.environ["WMSTUDIO_BASE_MODELS"]).expanduser().resolve()
    from wmstudio.resources import resource_path

    return resource_path(FOLDER)


def available() -> list[str]:
    """The names of the shipped base models (those with a card)."""
    try:
        return sorted(p.stem for p in folder().glob("*.json"))
    except FileNotFoundError:
        return []


def card(name: str) -> dict[str, Any]:
    """A shipped base model's card; ConfigError naming the field when there is no such model."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError("model.checkpoint", f"expected {PREFIX}<name> of a shipped base model, got {PREFIX}{name!r}")
    path = folder() / f"{name}.json" if name in available() else None
    if path is None or not path.is_file():
        names = ", ".join(PREFIX + n for n in available()) or "none"
        raise ConfigError("model.checkpoint", f"no shipped base model {name!r} (shipped: {names})")
    from wmstudio.safejson import loads

    try:
        data = loads(path.read_bytes(), str(path), CheckpointError)
    except OSError as exc:
        raise CheckpointError(f"{path}: not a readable base-model card ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
        raise CheckpointError(f"{path}: not a base-model card (expected format {CARD_FORMAT!r})")
    return data


def resolve(spec: str) -> Path:
    """The weights file of ``base:NAME``, after checking its SHA-256 against the card."""
    name = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    c = card(name)
    path = folder() / str(c.get("weights", ""))
    if path.parent != folder() or not path.is_file():
        raise CheckpointError(f"{path}: the weights of base model {name!r} are missing")
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        got = sha256_file(path)
        if got != c.get("sha256"):
            raise CheckpointError(f"{path}: SHA-256 {got} differs from the card's {c.get('sha256')}; the file "
                                  "is damaged or was replaced (retrain it: wmstudio base-model train)")
        _verified[key] = got
    return path


def tensors_hash(path: Path) -> str:
    """SHA-256 of a .safetensors file's tensors alone (names, dtypes, shapes and bytes, in name order):
    equal for bit-identical weights whatever the file's metadata says (e.g. the log it came from)."""
    from safetensors.torch import load_file

    h = hashlib.sha256()
    for name, t in sorted(load_file(str(path)).items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(-1).view(torch_uint8()).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def torch_uint8():  # noqa: ANN201 - torch.uint8, imported lazily
    import torch

    return torch.uint8


def indices_hash(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()


def make_card(log: Path, recipe: Path, weights: Path, name: str) -> dict[str, Any]:
    """The card of a base model trained by ``recipe`` into run log ``log`` and exported to ``weights``."""
    import h5py
    import torch

    import wmstudio
    from wmstudio.config import config_from_json
    from wmstudio.precision import cpu_flags
    from wmstudio.runlog import RunLogReader

    reader = RunLogReader(log)
    rec = reader.stage(STAGE)
    if rec.status != "finished":
        raise CheckpointError(f"{log}: the {STAGE} stage is {rec.status}, not finished; no base model to describe")
    cfg = config_from_json(reader.config_json)
    splits = reader.splits()
    info = reader.data_info()
    with h5py.File(log, "r") as f:  # the stage's own timestamps (ISO 8601, UTC)
        attrs = f["stages"][STAGE].attrs
        started, finished = str(attrs["started"]), str(attrs["finished"])
    seconds = _seconds_between(started, finished)
    return {
        "format": CARD_FORMAT, "version": CARD_VERSION, "name": name,
        "weights": weights.name, "sha256": sha256_file(weights), "tensors_sha256": tensors_hash(weights),
        "recipe": recipe.name, "recipe_sha256": sha256_file(recipe),
        "architecture": cfg.model.arch, "options": dict(cfg.model.options),
        "dataset": {"name": str(info.get("name", "")), "root": cfg.data.root, "classes": info.get("classes", []),
                    "normalization": {"mean": info.get("mean"), "std": info.get("std")}},
        "split": {"split_seed": cfg.data.split_seed, "owner": int(len(splits["owner"])),
                  "attacker": int(len(splits["attacker"])), "test": int(len(splits["test"])),
                  "owner_sha256": indices_hash(splits["owner"]), "attacker_sha256": indices_hash(splits["attacker"]),
                  "note": "the base saw only the owner's images; the attacker's pool and the test split are unseen"},
        "test_acc": rec.final("test_acc"), "test_loss": rec.final("test_loss"),
        "epochs": int(cfg.embed.clean_epochs), "steps": int(rec.train["global_step"][-1]) if len(rec.train.get(
            "global_step", [])) else 0,
        "training": {"started": started, "finished": finished, "seconds": seconds, "precision": cfg.run.precision,
                     "threads": cfg.run.threads, "seed": cfg.run.seed, "device": "cpu",
                     "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                     "bf16_flags": sorted(f for f in cpu_flags() if "bf16" in f)},
        "versions": {"wmstudio": wmstudio.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "source_log": str(log),
    }


def _seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    try:
        return round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 1)
    except ValueError:
        return float("nan")


def write_card(path: Path, data: dict[str, Any]) -> None:
    from wmstudio.safe_files import write_text

    write_text(path, json.dumps(data, indent=2) + "\n", overwrite=True)


