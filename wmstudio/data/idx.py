"""MNIST-style IDX files (``*-images-idx3-ubyte[.gz]`` with ``*-labels-idx1-ubyte[.gz]``)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from wmstudio.data.tensorset import DataPair, ImageTensors
from wmstudio.errors import DataError


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code != 0x08:
            raise DataError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
        dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        if arr.size != int(np.prod(dims)):
            raise DataError(f"{path}: truncated IDX file ({arr.size} values, header says {dims})")
        return arr.reshape(dims)
    except (OSError, EOFError, struct.error) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from exc


def _find(root: Path, prefix: str, kind: str) -> Path | None:
    for pattern in (f"{prefix}-{kind}-idx*-ubyte.gz", f"{prefix}-{kind}-idx*-ubyte", f"{prefix}-{kind}.idx*"):
        hits = sorted(root.glob(pattern))
        if hits:
            return hits[0]
    return None


def _load_split(root: Path, prefix: str) -> ImageTensors | None:
    images, labels = _find(root, prefix, "images"), _find(root, prefix, "labels")
    if images is None or labels is None:
        return None
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{images}: expected N images of HxW and N labels, got {x.shape} and {y.shape}")
    if len(y) == 0 or 0 in x.shape:
        raise DataError(f"{images}: holds no images (shape {x.shape})")
    classes = [str(c) for c in range(int(y.max()) + 1)]
    return ImageTensors.from_numpy(x, y.astype(np.int64), classes, f"{root.name}/{prefix}", layout="NHW")


def load_idx(root: str | Path) -> DataPair:
    """Reads ``train-*`` and ``t10k-*`` IDX pairs from a folder; a folder with only one uses it for both."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such folder (expected IDX files such as t10k-images-idx3-ubyte.gz)")
    train, test = _load_split(path, "train"), _load_split(path, "t10k")
    if train is None and test is None:
        raise DataError(f"{path}: no IDX image/label pair (train-* or t10k-*-idx?-ubyte[.gz]) found")
    return DataPair(train or test, test or train, path.name)  # type: ignore[arg-type]
