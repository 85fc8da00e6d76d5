"""ImageFolder trees (``train/<class>/*``, ``test/<class>/*``), as folders or .tar/.tar.gz archives.

Images are decoded once into uint8 arrays and cached (keyed by the source's path, size and
modification time), so later runs load in a fraction of a second and training never touches PIL.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from wmstudio.data.tensorset import DataPair, ImageTensors
from wmstudio.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def default_cache_dir() -> Path:
    base = os.environ.get("WMSTUDIO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "wmstudio")
    return Path(base)


def _is_archive(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(s) for s in ARCHIVE_SUFFIXES)


def _split_entry(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """(split, class) for a path ``.../train/<class>/<file>``, else None."""
    if len(parts) < 3 or Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if parts[-3] in SPLITS:
        return parts[-3], parts[-2]
    return None


def _iter_folder(root: Path) -> Iterator[tuple[str, str, bytes]]:
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    yield split, class_dir.name, f.read_bytes()


def _iter_archive(path: Path) -> Iterator[tuple[str, str, bytes]]:
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                entry = _split_entry(tuple(p for p in member.name.split("/") if p))
                if entry is None:
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    yield entry[0], entry[1], fh.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read the archive ({exc})") from exc


def _decode(data: bytes, size: int, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            if size and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f"{where}: not a readable image ({exc})") from exc


def _cache_key(root: Path, image_size: int) -> str:
    st = root.stat()
    if root.is_dir():  # a folder: its train/test class folders' mtimes stand for the content
        stamps = [str(p.stat().st_mtime_ns) for s in SPLITS if (root / s).is_dir() for p in (root / s).iterdir()]
        sig = f"{st.st_mtime_ns}:{','.join(stamps)}"
    else:
        sig = f"{st.st_size}:{st.st_mtime_ns}"
    text = f"v1|{root.resolve()}|{sig}|{image_size}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _decode_all(root: Path, image_size: int) -> dict[str, np.ndarray]:
    entries = _iter_archive(root) if _is_archive(root) else _iter_folder(root)
    per_split: dict[str, tuple[list[np.ndarray], list[str]]] = {s: ([], []) for s in SPLITS}
    shape: tuple[int, ...] | None = None
    for split, cls, data in entries:
        arr = _decode(data, image_size, f"{root}:{split}/{cls}")
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            if image_size:
                raise DataError(f"{root}: {split}/{cls} has an image of shape {arr.shape}, expected {shape}")
            arr = _decode(data, shape[0], f"{root}:{split}/{cls}")
        per_split[split][0].append(arr)
        per_split[split][1].append(cls)
    missing = [s for s in SPLITS if not per_split[s][0]]
    if missing:
        raise DataError(f"{root}: no images under {' or '.join(f'{s}/<class>/' for s in missing)} "
                        "(expected an ImageFolder tree: train/<class>/<image>, test/<class>/<image>)")
    classes = sorted(set(per_split["train"][1]))
    unknown = sorted(set(per_split["test"][1]) - set(classes))
    if unknown:
        raise DataError(f"{root}: test classes {unknown} do not appear under train/")
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, np.ndarray] = {"classes": np.array(classes)}
    for s in SPLITS:
        out[f"{s}_x"] = np.stack(per_split[s][0])
        out[f"{s}_y"] = np.array([index[c] for c in per_split[s][1]], dtype=np.int64)
    return out


def load_imagefolder(root: str | Path, image_size: int = 0, cache_dir: str | Path | None = None,
                     use_cache: bool = True) -> DataPair:
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such folder or archive (expected an ImageFolder tree "
                        "train/<class>/*, test/<class>/* or a .tar/.tar.gz of one)")
    if not (path.is_dir() or _is_archive(path)):
        raise DataError(f"{path}: not a folder or a .tar/.tar.gz archive")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_file = cache / f"imagefolder-{_cache_key(path, image_size)}.npz"
    arrays: dict[str, np.ndarray] | None = None
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            arrays = None  # a broken cache entry is rebuilt below
    if arrays is None:
        arrays = _decode_all(path, image_size)
        if use_cache:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, cache_file)
    classes = [str(c) for c in arrays["classes"]]
    name = path.name
    return DataPair(
        ImageTensors.from_numpy(arrays["train_x"], arrays["train_y"], classes, f"{name}/train"),
        ImageTensors.from_numpy(arrays["test_x"], arrays["test_y"], classes, f"{name}/test"),
        name,
    )
