"""HDF5 files opened as untrusted data (run logs, landscapes, null-model files).

An HDF5 file can point outside itself: a dataset's raw data may live in other files ("external
storage", e.g. a text file, a FIFO or ``/dev/zero``), a link may name an object in another file
(ExternalLink), a virtual dataset maps other files' datasets, and a filter id may make HDF5 load a
plugin library. It can also declare a dataset of any shape, whose read allocates it all. None of
this is ever needed for what wmstudio writes, so ``check_file`` walks every object of an opened file
(links with ``get(name, getlink=True)``, datasets' creation properties, attributes' sizes) and
refuses, before anything is read or written, with one error naming the file and the object:

- ExternalLinks and soft links (wmstudio writes only plain hard links);
- datasets with external raw storage or a virtual layout;
- filters other than deflate (gzip), shuffle and fletcher32 (what the writers use);
- named datatypes and any other kind of object;
- dataset dtypes other than numbers and booleans (text only where a rule allows it), shapes the
  format's schema does not allow (``Rule``), and any dataset or attribute larger than the memory
  budget (``wmstudio.memory.memory_budget``);
- more than ``MAX_OBJECTS`` objects or groups nested deeper than ``MAX_DEPTH``.

Text attributes that hold JSON or TOML (``*_json``, ``config_toml``, ``layer_names``) carry a crc32
of their UTF-8 bytes in a companion attribute ``<name>_crc32`` (``set_attrs``), verified on read
(``text_attr``, ``read_attrs``); an attribute without one (a log written before the checksums) is
read as it is.

A file that passed and has not changed since (same inode, size and modification time) is not walked
again in the same process; a writer marks its own commits as checked (``mark_checked``).
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wmstudio.errors import RunLogError, WmStudioError
from wmstudio.memory import gib, memory_budget

MAX_OBJECTS = 100_000
MAX_DEPTH = 16
MAX_ATTRS = 1_000
MAX_ATTR_BYTES = 64 * 2**20
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                   h5py.h5z.FILTER_FLETCHER32: "fletcher32"}
CRC_SUFFIX = "_crc32"
NUMERIC = "biuf"


@dataclass(frozen=True)
class Rule:
    """What a dataset at a path matching ``pattern`` (a regular expression, whole path) may be."""

    pattern: str
    kinds: str = NUMERIC  # numpy dtype kinds allowed; "T" for text (HDF5 strings)
    ndims: tuple[int, ...] = tuple(range(9))
    max_dims: tuple[int | None, ...] = ()  # per axis, from the first; None: bounded only by memory
    max_elements: int | None = None
    what: str = ""  # the expected form, for the message

    def check(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> str | None:
        """Why a dataset does not match, or None."""
        text = h5py.check_string_dtype(dtype) is not None
        kind_ok = ("T" in self.kinds) if text else (dtype.kind in self.kinds and dtype.names is None
                                                   and dtype.subdtype is None and dtype.kind != "O")
        expected = self.what or f"dtype kind {self.kinds!r}, {self.ndims} dimensions"
        if not kind_ok:
            return f"dtype {dtype} is not allowed here (expected {expected})"
        if len(shape) not in self.ndims:
            return f"shape {shape} has {len(shape)} dimensions (expected {expected})"
        for axis, (size, limit) in enumerate(zip(shape, self.max_dims, strict=False)):
            if limit is not None and size > limit:
                return f"shape {shape}: axis {axis} holds {size:,}, more than the {limit:,} allowed (expected {expected})"
        if self.max_elements is not None and int(np.prod(shape, dtype=np.float64)) > self.max_elements:
            return f"shape {shape} holds more than the {self.max_elements:,} values allowed (expected {expected})"
        return None


ANY_NUMERIC = Rule(r".*")

_checked: dict[tuple[str, int], tuple[int, int, int, int]] = {}


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def mark_checked(path: str | Path, rules: tuple[Rule, ...]) -> None:
    """The file at ``path`` as it is now was written by this process after a check: no walk on its next open."""
    sig = _signature(Path(path))
    if sig is not None:
        _checked[(str(Path(path).resolve()), id(rules))] = sig


def forget(path: str | Path) -> None:
    """Walk the file again on its next open (e.g. after a failed write)."""
    key = str(Path(path).resolve())
    for k in [k for k in _checked if k[0] == key]:
        del _checked[k]


def check_file(f: h5py.File, path: str | Path, rules: tuple[Rule, ...] = (ANY_NUMERIC,),
               error: type[WmStudioError] = RunLogError) -> None:
    """Refuse a file that points outside itself or whose datasets do not fit ``rules`` (first match
    wins; a dataset no rule matches is refused). One ``error`` naming the file and the object."""
    p = Path(path)
    key = (str(p.resolve()), id(rules))
    sig = _signature(p)
    if sig is not None and _checked.get(key) == sig:
        return
    budget = memory_budget()
    compiled = [(re.compile(r.pattern), r) for r in rules]

    def refuse(where: str, why: str) -> None:
        raise error(f"{p}: {where}: {why}; refused (a file is read as data only: see docs/runlog.md, Safety)")

    try:
        _walk(f, compiled, budget, refuse)
    except WmStudioError:
        raise
    except (RuntimeError, OSError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        text = " ".join(str(exc).split())[:200]  # HDF5's own message: damaged metadata found during the walk
        raise error(f"{p}: damaged or not a valid file ({type(exc).__name__}: {text})") from exc
    if sig is not None:
        _checked[key] = sig


def _walk(f: h5py.File, compiled: list[tuple[re.Pattern[str], Rule]], budget: int, refuse: Any) -> None:
    """Every object of the file, each link, dataset and attribute checked (``refuse`` raises)."""
    _check_attrs(f, "/", budget, refuse)
    stack: list[tuple[h5py.Group, int]] = [(f, 0)]
    count = 0
    while stack:
        group, depth = stack.pop()
        base = group.name.rstrip("/")
        for name in group:
            where = f"{base}/{name}"
            count += 1
            if count > MAX_OBJECTS:
                refuse(where, f"more than {MAX_OBJECTS:,} objects (or a group linked into itself)")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                refuse(where, f"an external link to {link.filename}:{link.path}")
            if isinstance(link, h5py.SoftLink):
                refuse(where, f"a soft link to {link.path}")
            if not isinstance(link, h5py.HardLink):
                refuse(where, f"a link of unknown type ({type(link).__name__})")
            obj = group.get(name)
            if isinstance(obj, h5py.Group):
                if depth + 1 > MAX_DEPTH:
                    refuse(where, f"groups nested more than {MAX_DEPTH} deep")
                _check_attrs(obj, where, budget, refuse)
                stack.append((obj, depth + 1))
            elif isinstance(obj, h5py.Dataset):
                _check_dataset(obj, where, compiled, budget, refuse)
                _check_attrs(obj, where, budget, refuse)
            else:
                refuse(where, f"an object of a kind wmstudio never writes ({type(obj).__name__})")


def _check_dataset(ds: h5py.Dataset, where: str, compiled: list[tuple[re.Pattern[str], Rule]], budget: int,
                   refuse: Any) -> None:
    dcpl = ds.id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        refuse(where, "a virtual dataset (its data would come from other files)")
    if dcpl.get_external_count() > 0:
        files = [dcpl.get_external(i)[0].decode(errors="replace") for i in range(min(3, dcpl.get_external_count()))]
        refuse(where, f"external raw storage (its data would be read from {', '.join(files)})")
    for i in range(dcpl.get_nfilters()):
        code = dcpl.get_filter(i)[0]
        if code not in ALLOWED_FILTERS:
            refuse(where, f"HDF5 filter {code} (only {', '.join(ALLOWED_FILTERS.values())} are read)")
    dtype, shape = ds.dtype, tuple(ds.shape or ())
    rule = next((r for rx, r in compiled if rx.fullmatch(where)), None)
    if rule is None:
        refuse(where, "a dataset the format does not have")
    why = rule.check(where, dtype, shape)
    if why:
        refuse(where, why)
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > budget:
        refuse(where, f"declares {gib(nbytes)} ({shape} {dtype}), more than the {gib(budget)} memory budget")


def _check_attrs(obj: h5py.HLObject, where: str, budget: int, refuse: Any) -> None:
    names = list(obj.attrs)
    if len(names) > MAX_ATTRS:
        refuse(where, f"{len(names):,} attributes (at most {MAX_ATTRS:,})")
    for name in names:
        aid = h5py.h5a.open(obj.id, name.encode())
        dtype, shape = aid.dtype, tuple(aid.shape or ())
        text = h5py.check_string_dtype(dtype) is not None
        if not text and (dtype.kind not in NUMERIC + "S" or dtype.names is not None or dtype.subdtype is not None):
            refuse(f"{where} attribute {name!r}", f"dtype {dtype} is not allowed (numbers, booleans or text)")
        nbytes = int(np.prod(shape, dtype=np.float64)) * max(1, dtype.itemsize)
        if nbytes > min(MAX_ATTR_BYTES, budget) or len(shape) > 2:
            refuse(f"{where} attribute {name!r}", f"shape {shape} {dtype} is larger than an attribute may be")


# ---------------------------------------------------------------- checksummed text attributes

def has_crc(key: str) -> bool:
    """Whether the writers checksum the attribute ``key`` (JSON and TOML text)."""
    return key.endswith("_json") or key in ("config_toml", "layer_names")


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", errors="surrogatepass"))


def set_attrs(obj: h5py.HLObject, values: Mapping[str, Any]) -> None:
    """``obj.attrs.update(values)``, plus a ``<key>_crc32`` for every JSON/TOML text attribute."""
    for key, value in values.items():
        obj.attrs[key] = value
        if has_crc(key) and isinstance(value, str):
            obj.attrs[key + CRC_SUFFIX] = np.uint32(_crc(value))


def _decode(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def text_attr(obj: h5py.HLObject, key: str, path: str | Path, default: str | None = None) -> str | None:
    """A text attribute, its crc32 verified when it has one (``RunLogError`` naming file, object and key)."""
    if key not in obj.attrs:
        return default
    value = _decode(obj.attrs[key])
    if not isinstance(value, str):
        raise RunLogError(f"{path}: {obj.name} attribute {key!r} is {type(value).__name__}, expected text")
    _verify(obj.attrs, key, value, path, obj.name)
    return value


def _verify(attrs: Any, key: str, value: Any, path: str | Path, where: str) -> None:
    crc = attrs.get(key + CRC_SUFFIX) if has_crc(key) else None
    if crc is None:
        return
    try:
        expected = int(np.asarray(crc).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        expected = -1
    if not isinstance(value, str) or _crc(value) != expected:
        raise RunLogError(f"{path}: {where} attribute {key!r} is damaged (crc32 mismatch)")


def read_attrs(obj: h5py.HLObject, path: str | Path) -> dict[str, Any]:
    """All attributes of ``obj`` (text decoded), checksums verified and left out of the result."""
    attrs = obj.attrs
    out = {k: _decode(v) for k, v in attrs.items() if not k.endswith(CRC_SUFFIX)}
    for key, value in out.items():
        _verify(attrs, key, value, path, obj.name)
    return out
