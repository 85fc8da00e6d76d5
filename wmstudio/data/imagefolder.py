"""ImageFolder trees (``train/<class>/*``, ``test/<class>/*``), as folders or .tar/.tar.gz archives.

Images are decoded once into uint8 arrays and cached (keyed by the source's path, the size and
modification time of every file, and the requested size), so later runs load in a fraction of a
second and training never touches PIL.

Hostile trees are refused with the file named: archive members with absolute paths or ``..``,
symbolic links that leave the tree (never followed), empty class folders, classes missing from one
split, unreadable images, and images whose header promises more than ``MAX_PIXELS`` pixels (checked
before anything is decoded). All images are resized to one size chosen deliberately:
``data.image_size`` when set, else the most common size (with a warning naming the odd ones).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmstudio.data.tensorset import DataPair, ImageTensors
from wmstudio.errors import DataError
from wmstudio.memory import gib, memory_budget

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
MAX_PIXELS = 4096 * 4096  # one image's width x height, read from its header before decoding
MAX_FILE_BYTES = 256 * 2**20  # one image file
CACHE_VERSION = "v2"


def default_cache_dir() -> Path:
    base = os.environ.get("WMSTUDIO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "wmstudio")
    return Path(base)


def is_archive(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(s) for s in ARCHIVE_SUFFIXES)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def split_entry(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """(split, class) for a path ``.../train/<class>/<file>``, else None."""
    if len(parts) < 3 or not _is_image_name(parts[-1]):
        return None
    if parts[-3] in SPLITS:
        return parts[-3], parts[-2]
    return None


@dataclass
class _Entry:
    split: str
    cls: str
    where: str  # the file, or archive:member, for messages
    source: Path | bytes  # a folder's file, or an archive member's bytes
    size: tuple[int, int] = (0, 0)  # (width, height) from the header


# ---------------------------------------------------------------- reading the tree

def _refuse_escape(p: Path, root_real: str) -> None:
    """A path (or a link on its way) that resolves outside the tree is refused, never followed."""
    real = os.path.realpath(p)
    if real != root_real and not real.startswith(root_real + os.sep):
        raise DataError(f"{p}: a symbolic link to {real}, outside the data folder {root_real}; refused "
                        "(copy the file into the tree instead)")


def _iter_folder(root: Path) -> Iterator[_Entry]:
    root_real = os.path.realpath(root)
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        _refuse_escape(split_dir, root_real)
        for class_dir in sorted(split_dir.iterdir()):
            if class_dir.name.startswith("."):
                continue
            _refuse_escape(class_dir, root_real)
            if not class_dir.is_dir():
                continue
            files = [f for f in sorted(class_dir.iterdir()) if _is_image_name(f.name)]
            if not files:
                raise DataError(f"{class_dir}: an empty class folder (no {', '.join(sorted(IMAGE_SUFFIXES))} "
                                "images); add images or remove the folder")
            for f in files:
                _refuse_escape(f, root_real)
                if not f.is_file():
                    raise DataError(f"{f}: not a regular file")
                if f.stat().st_size > MAX_FILE_BYTES:
                    raise DataError(f"{f}: {f.stat().st_size} bytes is too large for an image "
                                    f"(at most {MAX_FILE_BYTES // 2**20} MiB)")
                yield _Entry(split, class_dir.name, str(f), f)


def _unsafe_member(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name)) or ".." in parts


def _iter_archive(path: Path, class_dirs: set[tuple[str, str]]) -> Iterator[_Entry]:
    """Image members under ``train|test/<class>/``; collects the class folders it sees in ``class_dirs``."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = member.name
                if _unsafe_member(name):
                    raise DataError(f"{path}: archive member {name!r} has an absolute path or '..'; refused "
                                    "(every member must lie inside the tree)")
                parts = tuple(p for p in name.split("/") if p and p != ".")
                if member.isdir() and len(parts) >= 2 and parts[-2] in SPLITS:
                    class_dirs.add((parts[-2], parts[-1]))
                entry = split_entry(parts)
                if entry is None:
                    continue
                where = f"{path}:{name}"
                if member.issym() or member.islnk():
                    target = member.linkname
                    joined = posixpath.join(posixpath.dirname(name), target) if member.issym() else target
                    norm = posixpath.normpath(joined)
                    if _unsafe_member(target) or norm == ".." or norm.startswith("../"):
                        raise DataError(f"{where}: a link to {target!r}, outside the archive's tree; refused")
                elif not member.isfile():
                    continue
                if member.size > MAX_FILE_BYTES:
                    raise DataError(f"{where}: {member.size} bytes is too large for an image "
                                    f"(at most {MAX_FILE_BYTES // 2**20} MiB)")
                try:
                    fh = tar.extractfile(member)  # a link resolves to another member of this archive only
                except KeyError as exc:
                    raise DataError(f"{where}: a link to a member the archive does not hold ({exc})") from exc
                if fh is not None:
                    yield _Entry(entry[0], entry[1], where, fh.read(MAX_FILE_BYTES + 1))
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the archive ({exc})") from exc


# ---------------------------------------------------------------- decoding

def _reason(exc: Exception) -> str:
    """PIL's message without the in-memory file object it names."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image format"
    text = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the data", str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open(source: Path | bytes):  # noqa: ANN202 - a PIL image, imported lazily
    from PIL import Image

    return Image.open(source if isinstance(source, Path) else io.BytesIO(source))


def _probe(e: _Entry) -> None:
    """The image's size from its header; too many pixels are refused before anything is decoded."""
    try:
        with _open(e.source) as img:
            w, h = img.size
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f"{e.where}: not a readable image ({_reason(exc)})") from exc
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        side = int(MAX_PIXELS ** 0.5)
        raise DataError(f"{e.where}: {w}x{h} pixels is outside what an image may have here (at most "
                        f"{side}x{side}; decoded it would take {w * h * 3 / 2**20:.0f} MiB); refused")
    e.size = (w, h)


def _decode(e: _Entry, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    try:
        with _open(e.source) as img:
            img = img.convert("RGB")
            if img.size != size:
                img = img.resize(size, Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f"{e.where}: not a readable image ({_reason(exc)})") from exc


def _target_size(root: Path, entries: list[_Entry], image_size: int, warnings: list[str]) -> tuple[int, int]:
    """``image_size`` squared when set, else the most common (width, height), with a warning when
    some images differ (they are resized to it)."""
    if image_size:
        return image_size, image_size
    counts = Counter(e.size for e in entries)
    target = min(counts, key=lambda s: (-counts[s], s[0] * s[1], s))  # most common; ties: the smaller
    odd = [e for e in entries if e.size != target]
    if odd:
        w, h = target
        warnings.append(f"{root}: {len(odd)} of {len(entries)} images are not {w}x{h} (e.g. {odd[0].where} is "
                        f"{odd[0].size[0]}x{odd[0].size[1]}); all were resized to {w}x{h}, the most common size "
                        "(set data.image_size to choose the size)")
    return target


def _decode_all(root: Path, image_size: int) -> dict[str, np.ndarray]:
    class_dirs: set[tuple[str, str]] = set()
    entries = list(_iter_archive(root, class_dirs) if is_archive(root) else _iter_folder(root))
    missing = [s for s in SPLITS if not any(e.split == s for e in entries)]
    if missing:
        raise DataError(f"{root}: no images under {' or '.join(f'{s}/<class>/' for s in missing)} "
                        "(expected an ImageFolder tree: train/<class>/<image>, test/<class>/<image>)")
    empty = sorted(class_dirs - {(e.split, e.cls) for e in entries})
    if empty:
        raise DataError(f"{root}: empty class folder(s) {', '.join(f'{s}/{c}' for s, c in empty)} "
                        "(no images); add images or remove them")
    train_classes = {e.cls for e in entries if e.split == "train"}
    test_classes = {e.cls for e in entries if e.split == "test"}
    if test_classes - train_classes:
        raise DataError(f"{root}: test classes {sorted(test_classes - train_classes)} do not appear under train/")
    if train_classes - test_classes:
        raise DataError(f"{root}: train classes {sorted(train_classes - test_classes)} have no images under test/ "
                        "(every class needs test images to be evaluated)")
    for e in entries:
        _probe(e)
    warnings: list[str] = []
    w, h = _target_size(root, entries, image_size, warnings)
    total = len(entries) * w * h * 3
    if total > memory_budget():
        raise DataError(f"{root}: {len(entries)} images of {w}x{h} would take {gib(total)} in memory, more than "
                        f"the {gib(memory_budget())} allowed (half of this machine's); set data.image_size smaller")
    classes = sorted(train_classes)
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, np.ndarray] = {"classes": np.array(classes), "warnings": np.array(warnings, dtype=str)}
    for s in SPLITS:
        part = [e for e in entries if e.split == s]
        out[f"{s}_x"] = np.stack([_decode(e, (w, h)) for e in part])
        out[f"{s}_y"] = np.array([index[e.cls] for e in part], dtype=np.int64)
    return out


# ---------------------------------------------------------------- the cache

def _cache_key(root: Path, image_size: int) -> str:
    """Changes when any file of the tree (or the archive) changes: name, size, mtime, link target."""
    st = root.stat()
    if root.is_dir():
        h = hashlib.sha256()
        for split in SPLITS:
            split_dir = root / split
            if not split_dir.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(split_dir):  # links are listed, never entered
                dirnames.sort()
                for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                    p = os.path.join(dirpath, name)
                    ls = os.lstat(p)
                    link = os.readlink(p) if os.path.islink(p) else ""
                    h.update(f"{os.path.relpath(p, root)}|{ls.st_size}|{ls.st_mtime_ns}|{link}\n".encode())
        sig = h.hexdigest()
    else:
        sig = f"{st.st_size}:{st.st_mtime_ns}"
    text = f"{CACHE_VERSION}|{root.resolve()}|{sig}|{image_size}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _valid_cache(arrays: dict[str, np.ndarray]) -> bool:
    """A cache entry is used only when it holds what a decode writes, consistently."""
    try:
        classes = arrays["classes"]
        ok = classes.ndim == 1 and len(classes) > 0 and "warnings" in arrays
        for s in SPLITS:
            x, y = arrays[f"{s}_x"], arrays[f"{s}_y"]
            ok = ok and x.dtype == np.uint8 and x.ndim == 4 and x.shape[3] == 3 and len(x) > 0
            ok = ok and y.dtype == np.int64 and y.shape == (len(x),) and int(y.min()) >= 0 and int(y.max()) < len(classes)
        return bool(ok and arrays["train_x"].shape[1:] == arrays["test_x"].shape[1:])
    except (KeyError, ValueError, TypeError, AttributeError):
        return False


def load_imagefolder(root: str | Path, image_size: int = 0, cache_dir: str | Path | None = None,
                     use_cache: bool = True) -> DataPair:
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such folder or archive (expected an ImageFolder tree "
                        "train/<class>/*, test/<class>/* or a .tar/.tar.gz of one)")
    if not (path.is_dir() or is_archive(path)):
        raise DataError(f"{path}: not a folder or a .tar/.tar.gz archive")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        cache_file = cache / f"imagefolder-{_cache_key(path, image_size)}.npz"
    except OSError as exc:
        raise DataError(f"{path}: cannot list the tree ({exc})") from exc
    arrays: dict[str, np.ndarray] | None = None
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception:  # noqa: BLE001 - any broken cache entry is rebuilt below
            arrays = None
        if arrays is not None and not _valid_cache(arrays):
            arrays = None
    extra: list[str] = []
    if arrays is None:
        arrays = _decode_all(path, image_size)
        if use_cache:
            tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npz")
            try:
                cache.mkdir(parents=True, exist_ok=True)
                np.savez(tmp, **arrays)
                os.replace(tmp, cache_file)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                extra.append(f"{cache}: the decoded images could not be cached ({exc.strerror or exc})")
    classes = [str(c) for c in arrays["classes"]]
    name = path.name
    return DataPair(
        ImageTensors.from_numpy(arrays["train_x"], arrays["train_y"], classes, f"{name}/train"),
        ImageTensors.from_numpy(arrays["test_x"], arrays["test_y"], classes, f"{name}/test"),
        name,
        warnings=[str(w) for w in arrays["warnings"]] + extra,
    )
