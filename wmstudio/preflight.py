"""The model and its checkpoint, checked before any data is decoded.

Decoding a large image archive takes minutes; a checkpoint that does not fit the model (or is
refused) should fail in a second. ``preflight_checkpoint`` reads the checkpoint once, learns the
data set's channels, class count and image size cheaply (a table for the built-in and torchvision
sets; for ImageFolder trees the decoded-image cache's array headers, else a directory or archive
listing and one image header), builds the model and checks the checkpoint against it. The tensors it read are handed on, so the file is read once.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wmstudio.catalog import DATASETS
from wmstudio.config import DataSection, ExperimentConfig
from wmstudio.errors import CheckpointError
from wmstudio.models.checkpoint import LoadedCheckpoint, read_checkpoint
from wmstudio.models.fit import compare, describe_mismatch, head_name
from wmstudio.models.pretrained import load_pretrained
from wmstudio.models.registry import head_change


@dataclass
class DataDims:
    channels: int
    num_classes: int
    size: int
    exact_size: bool  # False: the size is a guess (the loader decides), so shapes are checked after the data


def _first_image_size(data: bytes) -> int | None:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.size[1])
    except Exception:  # noqa: BLE001 - a bad image is reported by the data loader, with its name
        return None


def _cached_dims(root: Path, d: DataSection) -> DataDims | None:
    """Classes and image shape from the decoded-image cache, reading two array headers (no pixels)."""
    import zipfile

    import numpy as np

    from wmstudio.data import imagefolder as imf

    try:
        cache = Path(d.cache_dir) if d.cache_dir else imf.default_cache_dir()
        path = cache / f"imagefolder-{imf._cache_key(root, d.image_size)}.npz"
        if not path.is_file():
            return None
        with zipfile.ZipFile(path) as zf:
            with zf.open("classes.npy") as fh:
                classes = np.lib.format.read_array(fh, allow_pickle=False)
            with zf.open("train_x.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape = read_header(fh)[0]
    except Exception:  # noqa: BLE001 - no usable cache: list the source instead
        return None
    if len(shape) != 4 or not len(classes):
        return None
    return DataDims(int(shape[3]), len(classes), int(shape[1]), exact_size=True)  # cached as (N, H, W, C)


def _imagefolder_dims(d: DataSection) -> DataDims | None:
    from wmstudio.data.imagefolder import IMAGE_SUFFIXES, is_archive, split_entry

    root = Path(d.root).expanduser()
    cached = _cached_dims(root, d) if root.exists() else None
    if cached is not None:
        return cached
    classes: set[str] = set()
    first: bytes | None = None
    if root.is_dir():
        train = root / "train"
        if not train.is_dir():
            return None
        for class_dir in sorted(p for p in train.iterdir() if p.is_dir()):
            images = [f for f in sorted(class_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
            if images:
                classes.add(class_dir.name)
                if first is None and not d.image_size:
                    first = images[0].read_bytes()
    elif is_archive(root):
        with tarfile.open(root, mode="r:*") as tar:  # names only: the stream is read, no image decoded
            for member in tar:
                entry = split_entry(tuple(p for p in member.name.split("/") if p)) if member.isfile() else None
                if entry is None or entry[0] != "train":
                    continue
                classes.add(entry[1])
                if first is None and not d.image_size:
                    fh = tar.extractfile(member)
                    first = fh.read() if fh is not None else None
    else:
        return None
    if not classes:
        return None
    size = d.image_size or (_first_image_size(first) if first else None)
    return DataDims(3, len(classes), size or 32, exact_size=bool(d.image_size))


def probe_dims(d: DataSection) -> DataDims | None:
    """Channels, classes and image size of the configured data, without decoding it; None when unknown.
    ``data.channels`` (when set) overrides the data set's own channel count, as the loader converts."""
    dims = _native_dims(d)
    if dims is not None and d.channels:
        dims.channels = d.channels
    return dims


def _native_dims(d: DataSection) -> DataDims | None:
    native = DATASETS.get(d.dataset).native if d.dataset in DATASETS else None  # (channels, classes, side)
    if native is not None:
        c, k, s = native
        return DataDims(c, k, d.image_size or s, exact_size=not d.image_size or d.image_size == s)
    if d.dataset == "imagefolder":
        try:
            return _imagefolder_dims(d)
        except (OSError, tarfile.TarError, EOFError):
            return None  # the data loader reports the broken archive with its name
    return None


def preflight_checkpoint(cfg: ExperimentConfig) -> LoadedCheckpoint | None:
    """Read ``model.checkpoint`` and check it against the model, before the data. None without a checkpoint.

    Raises CheckpointError (refused, unreadable, does not fit) or ConfigError (the model cannot be built).
    """
    if not cfg.model.checkpoint:
        return None
    ckpt = read_checkpoint(cfg.model.checkpoint, cfg.model.trust_checkpoint_code)
    dims = probe_dims(cfg.data)
    if dims is None:
        return ckpt  # checked against the model once the data is loaded
    from wmstudio.model_build import build_from_config

    with torch.random.fork_rng(devices=[]):  # the run's own model is built later from the same seed
        model = build_from_config(cfg, dims.channels, dims.num_classes, dims.size)
    if dims.exact_size:
        load_pretrained(model, ckpt, cfg.model.strict, cfg.model.reinit_head)
        return ckpt
    fit = compare(model, ckpt.tensors, ckpt.metadata)
    fit.shapes = _size_independent(model, fit.shapes)  # the rest is checked once the data fixes the size
    if cfg.model.reinit_head and head_change(model, ckpt.tensors) is not None:
        head = head_name(model)  # a head for another class count is re-initialised, not refused
        fit.shapes = [s for s in fit.shapes if s[0] not in (f"{head}.weight", f"{head}.bias")]
    if not fit.fits(cfg.model.strict):
        raise CheckpointError(f"{ckpt.source}: does not fit the model ({type(model).__name__}):\n"
                              + describe_mismatch(model, fit, ckpt.tensors))
    return ckpt


def _size_independent(model: torch.nn.Module, shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]]) \
        -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """Shape differences the image size cannot explain: convolution kernels, and the head's class count."""
    head = head_name(model)
    keep = []
    for key, ck, mo in shapes:
        is_head = head is not None and key in (f"{head}.weight", f"{head}.bias")
        if len(mo) == 4 or (is_head and ck[:1] != mo[:1]):
            keep.append((key, ck, mo))
    return keep


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_record(cfg: ExperimentConfig, ckpt: LoadedCheckpoint | None) -> dict[str, Any]:
    """What the log records about the model and its starting weights (shown by ``wmstudio inspect``)."""
    m = cfg.model
    if m.file:
        model = {"kind": "file", "file": str(Path(m.file).expanduser().resolve()), "factory": m.factory}
    else:
        model = {"kind": "torchvision" if m.arch.startswith("torchvision:") else "registry", "arch": m.arch}
    model["options"] = dict(m.options)
    record: dict[str, Any] = {"model": model, "checkpoint": None}
    if ckpt is not None:
        path = Path(ckpt.source)
        record["checkpoint"] = {"source": ckpt.source, "format": ckpt.format, "tensors": len(ckpt.tensors),
                                "trusted_code": ckpt.trusted_code,
                                "trust_checkpoint_code": bool(m.trust_checkpoint_code),
                                "sha256": _sha256(path) if path.is_file() else ""}
    return record
