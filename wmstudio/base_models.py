"""Shipped base models: trained weights every experiment can start from (``model.checkpoint = "base:NAME"``).

Each lives in ``resources/base_models/`` as ``NAME.safetensors`` with a card ``NAME.json`` beside it:
the weights' SHA-256, the recipe (``NAME.toml``, with its SHA-256), the data split (seed, sizes and a
hash of the owner's and the attacker's indices), the test accuracy, the training time, precision,
threads and library versions. ``wmstudio base-model train RECIPE`` trains a recipe's clean stage and
writes both files (the card: ``wmstudio.base_model_card``); ``--check`` retrains into a scratch folder and compares the weights' hash with the
shipped card (bit-for-bit where the platform, thread count and library versions are the same).

A ``base:`` checkpoint is checked against its card's hash before it is used, so a damaged or
swapped file is refused instead of silently starting the experiment from other weights.
"""

from __future__ import annotations

import hashlib
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
