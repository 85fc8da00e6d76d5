"""The schema of the ``wmstudio`` metadata in an exported model file (``wmstudio export-model``).

An exported file comes from whoever made it (a suspect's model): its metadata is data to check,
never trusted. ``parse_export_metadata`` takes the metadata as stored (a safetensors metadata string
or a ``.pt`` file's dict) and returns it only when every field has the documented type and range,
else one ``CheckpointError`` naming the file and the field. Whether a named model file may be
imported is decided elsewhere (the model-file trust rules in ``wmstudio.models``); this module only
says that the name is text.
"""

from __future__ import annotations

import math
from typing import Any

from wmstudio.config import MAX_IMAGE_SIZE
from wmstudio.errors import CheckpointError
from wmstudio.safejson import loads

EXPORT_FORMAT = "wmstudio-model"  # the metadata's "format" (wmstudio.export_model writes it)
EXPORT_VERSION = 1  # the newest metadata version this wmstudio reads and writes
MAX_CHANNELS = 16
MAX_CLASSES = 1_000_000
MAX_OPTIONS_DEPTH = 8
MAX_METADATA_BYTES = 4 * 2**20


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_export_metadata(meta: Any, source: str) -> dict[str, Any]:
    """The checked metadata (a dict) from its JSON text or dict; ``CheckpointError`` naming ``source`` and the field."""
    if isinstance(meta, (str, bytes)):
        meta = loads(meta, f"{source}: wmstudio metadata", CheckpointError, max_depth=MAX_OPTIONS_DEPTH + 4,
                     max_bytes=MAX_METADATA_BYTES)

    def bad(field: str, expected: str, value: Any = None) -> CheckpointError:
        return CheckpointError(f"{source}: wmstudio metadata {field}: expected {expected}, got {value!r:.80}")

    if not isinstance(meta, dict):
        raise bad("", "a JSON object", meta)
    if meta.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise bad("format", repr(EXPORT_FORMAT), meta.get("format"))
    if not _whole(meta.get("version", EXPORT_VERSION), 1, EXPORT_VERSION):
        raise bad("version", f"a version from 1 to {EXPORT_VERSION} (newer files need a newer wmstudio)",
                  meta.get("version"))
    a = meta.get("architecture")
    if not isinstance(a, dict):
        raise bad("architecture", "an object {arch, options, file, factory, dual_bn}", a)
    for key in ("arch", "file", "factory"):
        if not isinstance(a.get(key, ""), str) or len(a.get(key, "")) > 4096:
            raise bad(f"architecture.{key}", "text", a.get(key))
    if not isinstance(a.get("options") or {}, dict):
        raise bad("architecture.options", "an object {option: value}", a.get("options"))
    if not isinstance(a.get("dual_bn", False), bool):
        raise bad("architecture.dual_bn", "true or false", a.get("dual_bn"))
    for key, lo, hi in (("in_channels", 1, MAX_CHANNELS), ("image_size", 1, MAX_IMAGE_SIZE),
                        ("num_classes", 1, MAX_CLASSES)):
        if not _whole(meta.get(key), lo, hi):
            raise bad(key, f"a whole number from {lo} to {hi:,}", meta.get(key))
    classes = meta.get("classes", [])
    if not isinstance(classes, list) or len(classes) > MAX_CLASSES or not all(isinstance(c, str) for c in classes):
        raise bad("classes", "a list of class names", classes)
    norm = meta.get("normalization")
    if norm is not None:
        if not isinstance(norm, dict):
            raise bad("normalization", "an object {mean, std}", norm)
        mean, std = norm.get("mean"), norm.get("std")
        # the types only: values that are not finite, or a std <= 0, are what `wmstudio verify` reports as
        # "cannot be verified" (a degenerate normalisation), and a run refuses them by name (models/declared.py)
        for key, values in (("mean", mean), ("std", std)):
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_CHANNELS or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise bad(f"normalization.{key}", "a list of numbers, one per channel", values)
        if len(mean) != len(std):
            raise bad("normalization", "as many std values as mean values", norm)
    for key in ("partial",):
        if not isinstance(meta.get(key, False), bool):
            raise bad(key, "true or false", meta.get(key))
    for key in ("source", "stage", "dataset", "wmstudio_version"):
        if not isinstance(meta.get(key, ""), str):
            raise bad(key, "text", meta.get(key))
    return meta
