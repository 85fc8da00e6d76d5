"""Loading the checkpoints people actually have, without ever executing code from them.

Accepted: plain state_dicts; dicts nesting one under ``state_dict`` / ``model`` / ``net`` (and a few
other common keys); keys prefixed ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile);
``.safetensors``; TorchScript archives. Pickles go through ``torch.load(weights_only=True)``, which
refuses anything that would run code. Missing/unexpected keys and shape mismatches are named.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmstudio.errors import CheckpointError

NEST_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "module", "ema")
PREFIXES = ("module.", "_orig_mod.", "model.")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.split("/", 1)[-1].startswith("code/") or n.endswith("/constants.pkl") for n in zf.namelist())


SAFE_GLOBAL_PREFIXES = ("torch", "collections.OrderedDict", "numpy", "builtins", "_codecs", "__builtin__")


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


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _unnest(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    seen = 0
    while not _is_tensor_dict(obj):
        if isinstance(obj, nn.Module):
            return dict(obj.state_dict())
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
    return dict(obj)


def _strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def _from_run_log(path: Path, stage: str) -> dict[str, torch.Tensor]:
    from wmstudio.errors import RunLogError
    from wmstudio.runlog import RunLogReader

    if not path.is_file():
        raise CheckpointError(f"{path}: no such run log")
    try:
        reader = RunLogReader(path)
        with_weights = [r.name for r in reader.stages() if r.has_weights]
        if not stage:
            if not with_weights:
                raise CheckpointError(f"{path}: no stage has saved weights")
            stage = with_weights[-1]
        if stage not in with_weights:
            raise CheckpointError(f"{path}: stage {stage!r} has no saved weights (stages with weights: "
                                  f"{', '.join(with_weights) or 'none'})")
        return reader.weights(stage)
    except RunLogError as exc:
        raise CheckpointError(str(exc)) from exc


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint file in any supported form, CPU-side.

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
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _strip_prefixes(load_file(str(p), device="cpu"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{p}: not a readable safetensors file ({exc})") from exc
    if _is_torchscript(p):
        try:
            scripted = torch.jit.load(str(p), map_location="cpu")
        except Exception as exc:
            raise CheckpointError(f"{p}: not a readable TorchScript archive ({exc})") from exc
        return _strip_prefixes(dict(scripted.state_dict()))
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before failing on garbage
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        names = pickle_globals(p)
        unsafe = sorted({n for n in names or [] if not n.startswith(SAFE_GLOBAL_PREFIXES)})
        if unsafe:
            raise CheckpointError(
                f"{p}: refused: loading this pickle would run code ({', '.join(unsafe[:5])}); it holds a whole "
                "pickled model or custom objects. Save model.state_dict() instead, or export to .safetensors") from exc
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint (corrupted or truncated: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[-1][:160] if str(exc) else ''})") from exc
    return _strip_prefixes(_unnest(obj, p))


def load_checkpoint(model: nn.Module, path: str | Path, strict: bool = True) -> list[str]:
    """Load ``path`` into ``model``. Returns warnings (non-strict mismatches); raises on errors."""
    sd = load_state_dict_file(path)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in sd and sd[k].shape != own[k].shape]
    problems = []
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched[:10]))
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing[:10])}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:10])}")
    if mismatched or (strict and problems):
        raise CheckpointError(f"{path}: does not fit the model: " + " | ".join(problems))
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return [f"{path}: {p}" for p in problems]
