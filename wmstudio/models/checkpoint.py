"""Loading the checkpoints people actually have, without ever executing code from them.

Accepted: plain state_dicts; dicts nesting one under ``state_dict`` / ``model`` / ``net`` (and a few
other common keys); keys prefixed ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile);
``.safetensors``; TorchScript archives; a stage of a wmstudio run log. What is read from each and
what is never run is the table in docs/checkpoints.md:

* pickles go through ``torch.load(weights_only=True)``, which refuses anything that would run code;
* TorchScript archives are read by ``torchscript_reader`` (tensors only; ``torch.jit.load`` is never
  called), and refused with a conversion hint when that cannot be done without running their code;
* ``trust_code=True`` (``model.trust_checkpoint_code``) allows ``torch.jit.load`` and full pickles.

Old-format BatchNorm state dicts (no ``num_batches_tracked``) load as PyTorch loads them; any other
mismatch is reported as a table with a hint (``wmstudio.models.fit``).
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmstudio.errors import CheckpointError
from wmstudio.models.fit import compare, describe_mismatch, for_model

NEST_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "module", "ema")
PREFIXES = ("module.", "_orig_mod.", "model.")
TRUST_HINT = ("set model.trust_checkpoint_code = true only for a file from a source you trust (the run log "
              "records it)")


@dataclass
class LoadedCheckpoint:
    """A checkpoint's tensors, read CPU-side, with what is known about where they came from."""

    source: str  # the path (or RUN.h5:STAGE) as given
    format: str  # e.g. "pickled state_dict", "safetensors", "TorchScript (tensors read, no code run)"
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any] | None = None  # the state_dict's _metadata (module versions), prefixes stripped
    info: dict[str, Any] = field(default_factory=dict)  # metadata a wmstudio export stores (arch, normalisation)
    trusted_code: bool = False  # code in the file was allowed to run (torch.jit.load / a full pickle)


def _is_torchscript(path: Path) -> bool:
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return any(n.split("/", 1)[-1].startswith("code/") or n.endswith("/constants.pkl") for n in zf.namelist())
    except Exception:  # noqa: BLE001 - zipfile raises many types on damaged archives
        return False  # not a readable zip: torch.load reports it as a broken checkpoint


SAFE_GLOBAL_PREFIXES = ("torch", "collections.OrderedDict", "numpy", "builtins", "_codecs", "__builtin__")
# the builtins a weights-only pickle may name (containers of data); any other builtin is a callable
# that can run code (eval, exec, getattr, __import__, open, ...) and is refused by name
SAFE_BUILTINS = frozenset({"set", "frozenset", "bytearray", "bytes", "complex", "slice", "int", "float", "str",
                           "bool", "list", "dict", "tuple", "range", "unicode"})


def _pickle_bytes(path: Path) -> bytes:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
            return zf.read(name) if name else b""
    return path.read_bytes()


def pickle_globals(path: Path) -> list[str] | None:
    """The globals a pickle would import, read with pickletools (nothing runs); None if unparseable."""
    import pickletools

    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(_pickle_bytes(path)):
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:
        return None
    return found


def _unsafe_builtin(name: str) -> bool:
    """A builtin other than a plain data type (``builtins.eval``, ``__builtin__.getattr``)."""
    module, _, tail = name.rpartition(".")
    return module in ("builtins", "__builtin__") and tail not in SAFE_BUILTINS


def _unsafe_numpy(name: str) -> bool:
    """A numpy global other than scalars, dtypes and arrays (numpy has callables that run code)."""
    if not name.startswith("numpy"):
        return False
    tail = name.rsplit(".", 1)[-1]
    return tail not in ("scalar", "_reconstruct", "ndarray", "dtype") and not tail.endswith("DType")


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _unnest(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    """The state_dict inside a checkpoint object (the mapping itself, so its ``_metadata`` survives)."""
    seen = 0
    while not _is_tensor_dict(obj):
        if isinstance(obj, nn.Module):
            return obj.state_dict()
        if not isinstance(obj, Mapping) or seen > 4:
            raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict of tensors")
        key = next((k for k in NEST_KEYS if k in obj), None)
        if key is None:
            tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if tensors:
                return tensors
            raise CheckpointError(f"{path}: no state_dict found; top-level keys are {sorted(map(str, obj))[:12]} "
                                  f"(expected tensors, or one of {', '.join(NEST_KEYS)})")
        obj, seen = obj[key], seen + 1
    return obj


def _strip_prefixes(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Keys without the wrappers' prefixes, and the prefixes removed (in order)."""
    out, removed = dict(sd), []
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if out and all(k.startswith(prefix) for k in out):
                out = {k[len(prefix):]: v for k, v in out.items()}
                removed.append(prefix)
                changed = True
    return out, removed


def _strip_metadata(metadata: Any, removed: list[str]) -> dict[str, Any] | None:
    """The module-version metadata with the same prefixes removed ("module" -> "", "module.bn1" -> "bn1")."""
    if not isinstance(metadata, Mapping):
        return None
    out = dict(metadata)
    for prefix in removed:
        stripped: dict[str, Any] = {}
        for key, value in out.items():
            if key == prefix[:-1]:
                stripped[""] = value
            elif key.startswith(prefix):
                stripped[key[len(prefix):]] = value
        out = stripped
    return out


def _from_mapping(source: str, fmt: str, sd: Mapping[str, torch.Tensor], **kw: Any) -> LoadedCheckpoint:
    tensors, removed = _strip_prefixes(sd)
    return LoadedCheckpoint(source, fmt, tensors, _strip_metadata(getattr(sd, "_metadata", None), removed), **kw)


def stage_with_weights(reader: Any, path: Path, stage: str) -> str:
    """``stage`` if the run log (a ``RunLogReader``) saved its weights; for "" the last stage that did.
    Raises CheckpointError naming the stages that have weights."""
    with_weights = [r.name for r in reader.stages() if r.has_weights]
    if not stage:
        if not with_weights:
            raise CheckpointError(f"{path}: no stage has saved weights")
        return str(with_weights[-1])
    if stage not in with_weights:
        raise CheckpointError(f"{path}: stage {stage!r} has no saved weights (stages with weights: "
                              f"{', '.join(with_weights) or 'none'})")
    return stage


def _from_run_log(path: Path, stage: str) -> LoadedCheckpoint:
    from wmstudio.errors import RunLogError
    from wmstudio.runlog_reader import RunLogReader

    if not path.is_file():
        raise CheckpointError(f"{path}: no such run log")
    try:
        reader = RunLogReader(path)
        stage = stage_with_weights(reader, path, stage)
        return LoadedCheckpoint(f"{path}:{stage}", f"run log stage {stage}", reader.weights(stage))
    except RunLogError as exc:
        raise CheckpointError(str(exc)) from exc
    except (KeyError, ValueError, TypeError, OSError) as exc:  # damaged attributes or datasets
        raise CheckpointError(f"{path}: a damaged run log, its weights cannot be read "
                              f"({type(exc).__name__}: {str(exc)[:160]})") from exc


def _safetensors(p: Path) -> LoadedCheckpoint:
    from safetensors import SafetensorError, safe_open

    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            for key in fh.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: not a readable safetensors file ({exc})") from exc
    info = {}
    if "wmstudio" in meta:  # an export's metadata: checked against its schema before any use
        from wmstudio.export_schema import parse_export_metadata

        info = parse_export_metadata(meta["wmstudio"], str(p))
    return _from_mapping(str(p), "safetensors", tensors, info=info)


def _torchscript(p: Path, trust_code: bool) -> LoadedCheckpoint:
    from wmstudio.models.torchscript_reader import TorchScriptRefused, read_torchscript_tensors

    if trust_code:
        try:
            scripted = torch.jit.load(str(p), map_location="cpu")
        except Exception as exc:
            raise CheckpointError(f"{p}: not a readable TorchScript archive ({exc})") from exc
        return _from_mapping(str(p), "TorchScript (loaded with torch.jit.load: its code ran, trusted)",
                             scripted.state_dict(), trusted_code=True)
    try:
        tensors = read_torchscript_tensors(p)
    except TorchScriptRefused as exc:
        raise CheckpointError(
            f"{p}: refused: this TorchScript archive cannot be read without running its code ({exc}). Convert it "
            f"where you trust it: torch.save(torch.jit.load(FILE).state_dict(), 'weights.pt'), or {TRUST_HINT}") from exc
    except Exception as exc:  # zip/pickle errors on a damaged archive
        raise CheckpointError(f"{p}: not a readable TorchScript archive ({type(exc).__name__}: "
                              f"{str(exc)[:160]})") from exc
    return _from_mapping(str(p), "TorchScript (tensors read, no code run)", tensors)


def _numpy_globals() -> list[Any]:
    """numpy scalars, dtypes and arrays (an ``acc`` or ``best_prec1`` saved as ``np.float64``): data, no code.

    Each under the name numpy 2 pickles it with and the ``numpy.core`` name numpy 1 used.
    """
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # type: ignore[attr-defined]
    out: list[Any] = [np.dtype, np.ndarray]
    for fn in (core.multiarray.scalar, core.multiarray._reconstruct):
        out += [(fn, f"numpy._core.multiarray.{fn.__name__}"), (fn, f"numpy.core.multiarray.{fn.__name__}")]
    for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_):
        out.append(type(np.dtype(t)))
    return out


def _weights_only_load(p: Path) -> Any:
    with warnings.catch_warnings():  # torch warns about pickle protocols before failing on garbage
        warnings.simplefilter("ignore", UserWarning)
        try:
            return torch.load(str(p), map_location="cpu", weights_only=True)
        except Exception:
            names = pickle_globals(p) or []
            if not any(n.startswith("numpy") for n in names):
                raise
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(str(p), map_location="cpu", weights_only=True)


def _pickle(p: Path, trust_code: bool) -> LoadedCheckpoint:
    try:
        obj = _weights_only_load(p)
        fmt, trusted = "pickled state_dict (weights_only)", False
    except Exception as exc:
        names = pickle_globals(p)
        unsafe = sorted({n.replace("__builtin__.", "builtins.") for n in names or []
                         if not n.startswith(SAFE_GLOBAL_PREFIXES) or _unsafe_numpy(n) or _unsafe_builtin(n)})
        if unsafe and trust_code:
            try:
                obj = torch.load(str(p), map_location="cpu", weights_only=False)
            except Exception as exc2:
                raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({type(exc2).__name__}: "
                                      f"{str(exc2)[:160]})") from exc2
            fmt, trusted = f"full pickle (its code ran, trusted: {', '.join(unsafe[:3])})", True
        elif unsafe:
            raise CheckpointError(
                f"{p}: refused: loading this pickle would run code ({', '.join(unsafe[:5])}); it holds a whole "
                "pickled model or custom objects. Save model.state_dict() instead, or export to .safetensors, "
                f"or {TRUST_HINT}") from exc
        elif not _looks_like_torch_save(p):
            raise CheckpointError(f"{p}: not a checkpoint: expected a state_dict saved by torch.save (a zip archive or "
                                  "a pickle), a .safetensors file, a TorchScript archive or a run log (run.h5:embed); "
                                  f"this file begins with {_first_bytes(p)}") from exc
        else:
            raise CheckpointError(f"{p}: not a readable PyTorch checkpoint (corrupted or truncated: "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[-1][:160] if str(exc) else ''})") from exc
    info = obj.get("wmstudio") if isinstance(obj, Mapping) else None
    if info is not None:  # an export's metadata: checked against its schema before any use
        from wmstudio.export_schema import parse_export_metadata

        info = parse_export_metadata(info, str(p))
    return _from_mapping(str(p), fmt, _unnest(obj, p), info=info if isinstance(info, dict) else {},
                         trusted_code=trusted)


def _looks_like_torch_save(p: Path) -> bool:
    """Whether the file begins as torch.save writes: a zip archive, or a pickle (protocol 2 or later)."""
    with p.open("rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _first_bytes(p: Path, n: int = 24) -> str:
    """The file's first bytes for a message: quoted text when they are text, else their hex."""
    with p.open("rb") as f:
        head = f.read(n)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    more = " …" if len(head) == n else ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"the text {text!r}{more}"
    return f"the bytes {head[:8].hex(' ')}{' …' if len(head) > 8 else ''}"


def read_checkpoint(path: str | Path, trust_code: bool = False) -> LoadedCheckpoint:
    """Read the tensors of a checkpoint file in any supported form, CPU-side, running nothing from it
    unless ``trust_code``.

    ``RUN.h5:STAGE`` (or ``RUN.h5`` for its last stage with weights) reads a stage's weights from a
    wmstudio run log, so a later experiment can start from the watermarked model of an earlier one.
    """
    text = str(path)
    log_path, _, stage = text.rpartition(":") if (".h5:" in text or ".hdf5:" in text) else (text, "", "")
    if Path(log_path).suffix in (".h5", ".hdf5"):
        return _from_run_log(Path(log_path).expanduser(), stage)
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    if p.suffix == ".safetensors":
        return _safetensors(p)
    if _is_torchscript(p):
        return _torchscript(p, trust_code)
    return _pickle(p, trust_code)


def nonfinite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors holding a NaN or an infinity, in the checkpoint's order."""
    return [k for k, v in tensors.items()
            if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex()) and v.numel()
            and not bool(torch.isfinite(v).all())]


def load_state_dict_file(path: str | Path, trust_code: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint (see ``read_checkpoint``)."""
    return read_checkpoint(path, trust_code).tensors


def load_checkpoint(model: nn.Module, path: str | Path | LoadedCheckpoint, strict: bool = True,
                    trust_code: bool = False) -> list[str]:
    """Load a checkpoint into ``model``. Returns warnings (non-strict mismatches, trusted code); raises on errors.

    ``path`` may be an already read ``LoadedCheckpoint`` (the pre-flight check reads it once).
    """
    ckpt = path if isinstance(path, LoadedCheckpoint) else read_checkpoint(path, trust_code)
    fit = compare(model, ckpt.tensors, ckpt.metadata)
    if not fit.fits(strict):
        raise CheckpointError(f"{ckpt.source}: does not fit the model ({type(model).__name__}):\n"
                              + describe_mismatch(model, fit, ckpt.tensors))
    own = model.state_dict()
    state = {k: v for k, v in for_model(model, ckpt.tensors).items() if k in own}
    if ckpt.metadata is not None:
        state = _with_metadata(state, ckpt.metadata)
    model.load_state_dict(state, strict=False)
    notes = []
    if ckpt.trusted_code:
        notes.append(f"{ckpt.source}: loaded as {ckpt.format} (model.trust_checkpoint_code = true)")
    if not fit.clean:
        notes.append(f"{ckpt.source}: does not match the model exactly (model.strict = false):\n"
                     + describe_mismatch(model, fit, ckpt.tensors))
    return notes


def _with_metadata(state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, torch.Tensor]:
    from collections import OrderedDict

    out: OrderedDict[str, torch.Tensor] = OrderedDict(state)
    out._metadata = metadata  # type: ignore[attr-defined]  # module versions: BatchNorm fills old num_batches_tracked
    return out
