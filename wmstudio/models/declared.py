"""The input normalisation a checkpoint or model file declares (used when ``data.normalize = "auto"``).

Where a declaration is read from, first found wins:

1. the checkpoint (``model.checkpoint``):
   - a PyTorch ``.pt``/``.pth``/``.th`` dict: a ``normalization`` entry beside the weights,
     ``{"state_dict": ..., "normalization": {"mean": [...], "std": [...]}}``;
   - ``.safetensors``: metadata keys ``wmstudio.mean`` and ``wmstudio.std``, each a JSON list
     (``save_file(tensors, path, metadata={"wmstudio.mean": "[0.485, 0.456, 0.406]", ...})``);
   - a wmstudio run log (``run.h5:embed``): the mean/std that run used;
   - a file written by ``wmstudio export-model`` (either format): the ``normalization`` entry of
     its ``wmstudio`` metadata, i.e. the mean/std of the run it was exported from;
2. the model file (``model.file``): a module-level literal
   ``NORMALIZATION = {"mean": [...], "std": [...]}``, read with ``ast`` (the file is not run for it).

Values are per channel, in [0, 1] pixel units, as torchvision's ``Normalize`` takes them. Reading
never executes code (``torch.load(weights_only=True)``); a file that cannot be read declares nothing
here and is reported by the checkpoint loader.
"""

from __future__ import annotations

import ast
import json
import math
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wmstudio.data.normalization import DeclaredNormalization
from wmstudio.errors import CheckpointError, ConfigError

KEY = "normalization"
MIN_STD = 1e-3  # the smallest std a declaration may give (Normalizer.fit clamps a fitted std to the same)
SAFETENSORS_KEYS = ("wmstudio.mean", "wmstudio.std")
EXPORT_KEY = "wmstudio"  # the metadata ``wmstudio export-model`` writes; its ``normalization`` entry is used


def _parse(value: Any, source: str, field: str) -> DeclaredNormalization:
    """{"mean": [...], "std": [...]} -> DeclaredNormalization, or one error naming the file and what is wrong."""
    def bad(why: str) -> Exception:
        text = f"{source}: its declared normalisation {why}"
        return ConfigError(field, text) if field == "model.file" else CheckpointError(text)

    if not isinstance(value, Mapping) or "mean" not in value or "std" not in value:
        raise bad(f"must be {{'mean': [...], 'std': [...]}}, got {value!r:.120}")
    try:
        mean = tuple(float(v) for v in value["mean"])
        std = tuple(float(v) for v in value["std"])
    except (TypeError, ValueError):
        raise bad(f"must hold lists of numbers, got {value!r:.120}") from None
    if not mean or len(mean) != len(std):
        raise bad(f"needs one mean and one std per channel, got {len(mean)} and {len(std)}")
    if not all(math.isfinite(v) for v in mean + std):
        raise bad(f"is not finite (NaN or inf): mean {list(mean)}, std {list(std)}")
    if any(s < MIN_STD for s in std):
        raise bad(f"has a std below {MIN_STD:g} (zero, negative or too small to divide by): {list(std)}")
    return DeclaredNormalization(mean, std, source)


def _from_pickle(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            import torch

            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception:  # noqa: BLE001 - unreadable here: the checkpoint loader reports it
        return None


def _from_safetensors(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - unreadable here: the checkpoint loader reports it
        return {}


def from_checkpoint(checkpoint: str) -> DeclaredNormalization | None:
    text = str(checkpoint)
    log_path = text.rpartition(":")[0] if (".h5:" in text or ".hdf5:" in text) else text
    source = f"checkpoint {text}"
    if Path(log_path).suffix in (".h5", ".hdf5"):
        from wmstudio.errors import RunLogError
        from wmstudio.runlog_reader import RunLogReader

        try:
            info = RunLogReader(Path(log_path).expanduser()).data_info()
        except (RunLogError, KeyError, OSError):
            return None
        return _parse(info, source, "model.checkpoint") if "mean" in info else None
    path = Path(text).expanduser()
    if not path.is_file():
        return None
    if path.suffix == ".safetensors":
        meta = _from_safetensors(path)
        export = _export_normalization(meta.get(EXPORT_KEY))
        if export is not None:
            return _parse(export, source, "model.checkpoint")
        if not any(k in meta for k in SAFETENSORS_KEYS):
            return None
        try:
            value = {"mean": json.loads(meta.get(SAFETENSORS_KEYS[0], "null")),
                     "std": json.loads(meta.get(SAFETENSORS_KEYS[1], "null"))}
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{source}: metadata {SAFETENSORS_KEYS} must be JSON lists ({exc})") from None
        return _parse(value, source, "model.checkpoint")
    obj = _from_pickle(path)
    if isinstance(obj, Mapping) and KEY in obj:
        return _parse(obj[KEY], source, "model.checkpoint")
    if isinstance(obj, Mapping):
        export = _export_normalization(obj.get(EXPORT_KEY))
        if export is not None:
            return _parse(export, source, "model.checkpoint")
    return None


def _export_normalization(meta: Any) -> Any:
    """The ``normalization`` entry of a ``wmstudio export-model`` file's metadata (a dict, or its JSON text)."""
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            return None
    return meta.get(KEY) if isinstance(meta, Mapping) else None


def from_model_file(file: str) -> DeclaredNormalization | None:
    path = Path(file).expanduser()
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None  # the model registry reports a missing or broken file
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "NORMALIZATION" for t in targets) and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise ConfigError("model.file", f"{path}: NORMALIZATION must be a literal "
                                                "{'mean': [...], 'std': [...]}") from None
            return _parse(value, f"model file {path}", "model.file")
    return None


def declared_normalization(checkpoint: str = "", file: str = "") -> DeclaredNormalization | None:
    """What the checkpoint declares, else what the model file declares, else None."""
    found = from_checkpoint(checkpoint) if checkpoint else None
    if found is None and file:
        found = from_model_file(file)
    return found
