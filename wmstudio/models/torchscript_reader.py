"""Reading the tensors of a TorchScript archive without running any of its code.

A TorchScript ``.pt`` is a zip: ``data.pkl`` pickles the module tree (one object per submodule,
its attributes as a dict), ``data/<key>`` hold the raw tensor storages, and ``code/`` holds the
modules' TorchScript source. ``torch.jit.load`` compiles that source and runs it, including any
``__setstate__`` the archive defines; this reader does neither:

* ``data.pkl`` is read by an unpickler that resolves only tensor rebuilds, storage types and
  TorchScript's list builders (to functions written here), and stands every ``__torch__.*``
  class in with an inert placeholder that only records its state. Any other global is refused.
* ``code/*.py`` is *parsed* (``ast.parse``, never compiled or executed) for each class's
  ``__parameters__`` and ``__buffers__`` lists, so the state_dict keys are what
  ``torch.jit.load(f).state_dict()`` would give.
* A class that defines ``__setstate__`` (code that would run on load) is refused: its state is
  whatever its own code says, which cannot be read without running it.
"""

from __future__ import annotations

import ast
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
}


class TorchScriptRefused(Exception):
    """The archive cannot be read without running its code (the message says why)."""


@dataclass
class ClassInfo:
    """What the archive's source declares about one TorchScript class (parsed, never run)."""

    parameters: list[str] = field(default_factory=list)
    buffers: list[str] = field(default_factory=list)
    is_module: bool = False
    has_setstate: bool = False


@dataclass
class _StorageType:
    dtype: torch.dtype


@dataclass
class _Storage:
    dtype: torch.dtype
    flat: torch.Tensor  # 1-D, this storage's elements


class _Placeholder:
    """Stands in for an instance of a TorchScript class: records the pickled state, runs nothing."""

    qualname = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _strings(node: ast.AST) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def parse_classes(zf: zipfile.ZipFile, prefix: str) -> dict[str, ClassInfo]:
    """``qualified class name -> ClassInfo`` from the archive's ``code/`` files, by parsing only."""
    classes: dict[str, ClassInfo] = {}
    code_root = f"{prefix}code/"
    for name in zf.namelist():
        if not (name.startswith(code_root) and name.endswith(".py")):
            continue
        module = name[len(code_root):-3].replace("/", ".")
        try:
            tree = ast.parse(zf.read(name).decode("utf-8"), filename=name)
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
            raise TorchScriptRefused(f"its source {name} cannot be parsed ({type(exc).__name__})") from exc
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            info = ClassInfo(is_module=any(isinstance(b, ast.Name) and b.id == "Module" for b in node.bases))
            for item in node.body:
                if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                    values = _strings(item.value)
                    if item.targets[0].id == "__parameters__" and values is not None:
                        info.parameters = values
                    elif item.targets[0].id == "__buffers__" and values is not None:
                        info.buffers = values
                elif isinstance(item, ast.FunctionDef) and item.name == "__setstate__":
                    info.has_setstate = True
            classes[f"{module}.{node.name}"] = info
    return classes


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_rest: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` for our own storages, with the bounds checked first."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or int(offset) < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"a tensor with an invalid layout (size {size}, stride {stride})")
    elements = 1
    for s in size:
        elements *= s
    if elements > storage.flat.numel():  # legitimate tensors never hold more elements than their storage
        raise pickle.UnpicklingError(f"a tensor of size {size} claims more elements than its storage "
                                     f"({storage.flat.numel()})")
    if elements:
        last = int(offset) + sum((s - 1) * st for s, st in zip(size, stride, strict=True))
        if last >= storage.flat.numel():
            raise pickle.UnpicklingError(f"a tensor of size {size} reaches past its storage "
                                         f"({storage.flat.numel()} elements)")
    return torch.as_strided(storage.flat, size, stride, int(offset)).clone()


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


def _same(value: Any, *_rest: Any) -> Any:
    return value


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch.jit._pickle", "build_intlist"): _same,
    ("torch.jit._pickle", "build_doublelist"): _same,
    ("torch.jit._pickle", "build_boollist"): _same,
    ("torch.jit._pickle", "build_tensorlist"): _same,
    ("torch.jit._pickle", "restore_type_tag"): _same,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.zf, self.prefix = zf, prefix
        self.storages: dict[str, _Storage] = {}
        self.placeholders: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self.placeholders:
                self.placeholders[qualname] = type(f"TorchScript:{qualname}", (_Placeholder,), {"qualname": qualname})
            return self.placeholders[qualname]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"it names {module}.{name}, which is not a tensor or module")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"an unknown persistent id {str(pid)[:80]}")
        _, stype, key, _location, numel = pid
        key = str(key)
        if key not in self.storages:
            entry = f"{self.prefix}data/{key}"
            try:
                raw = self.zf.read(entry)
            except KeyError:
                raise pickle.UnpicklingError(f"its storage {entry} is missing") from None
            itemsize = torch.empty(0, dtype=stype.dtype).element_size()
            if int(numel) < 0 or len(raw) < int(numel) * itemsize:
                raise pickle.UnpicklingError(f"its storage {entry} holds {len(raw)} bytes, fewer than "
                                             f"{numel} elements of {stype.dtype}")
            flat = torch.frombuffer(bytearray(raw[:int(numel) * itemsize]), dtype=stype.dtype) if numel else \
                torch.empty(0, dtype=stype.dtype)
            self.storages[key] = _Storage(stype.dtype, flat)
        return self.storages[key]


def archive_prefix(zf: zipfile.ZipFile) -> str:
    """The archive's top folder (``name/``), where ``data.pkl`` lives."""
    name = next((n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") <= 1), None)
    if name is None:
        raise TorchScriptRefused("it has no data.pkl")
    return name[: -len("data.pkl")]


def _collect(obj: Any, classes: dict[str, ClassInfo], prefix: str, out: dict[str, torch.Tensor], depth: int) -> None:
    if depth > 200:
        raise TorchScriptRefused("its module tree is nested more than 200 levels deep")
    qualname = type(obj).qualname
    info = classes.get(qualname)
    if info is None:
        raise TorchScriptRefused(f"its class {qualname} has no source in code/ (cannot tell parameters from "
                                 "other attributes)")
    if info.has_setstate:
        raise TorchScriptRefused(f"its class {qualname} defines __setstate__, code that would run on load")
    state = getattr(obj, "state", None)
    if not isinstance(state, dict):
        raise TorchScriptRefused(f"the state of {qualname} is a {type(state).__name__}, not attributes")
    for name in info.parameters + info.buffers:
        value = state.get(name)
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
    for name, value in state.items():
        if isinstance(value, _Placeholder) and classes.get(type(value).qualname, ClassInfo()).is_module:
            _collect(value, classes, f"{prefix}{name}.", out, depth + 1)


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The archive's state_dict (as ``torch.jit.load(path).state_dict()`` gives it), running nothing.

    Raises TorchScriptRefused when that cannot be done safely, zipfile/pickle errors on a broken file.
    """
    with zipfile.ZipFile(path) as zf:
        prefix = archive_prefix(zf)
        order = f"{prefix}byteorder"
        if order in zf.namelist() and zf.read(order).strip() not in (b"little", b""):
            raise TorchScriptRefused(f"its tensors are stored {zf.read(order).strip().decode(errors='replace')}-endian")
        classes = parse_classes(zf, prefix)
        unpickler = _SafeUnpickler(zf.read(f"{prefix}data.pkl"), zf, prefix)
        try:
            root = unpickler.load()
        except pickle.UnpicklingError as exc:
            raise TorchScriptRefused(str(exc)) from exc
        if not isinstance(root, _Placeholder):
            raise TorchScriptRefused(f"its data.pkl holds a {type(root).__name__}, not a module")
        out: dict[str, torch.Tensor] = {}
        _collect(root, classes, "", out, 0)
        return out
