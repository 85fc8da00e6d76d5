"""The run log's schema (docs/runlog.md) as checks: what each dataset may be, checked at open
(``RUNLOG_RULES``, by ``wmstudio.h5safe.check_file``, before anything is read), and what the values
read back must satisfy before they are used (labels, splits, the data record)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.config import MAX_IMAGE_SIZE, MAX_TRIGGERS
from wmstudio.errors import RunLogError
from wmstudio.h5safe import Rule

MAX_CHANNELS = 16
MAX_CLASSES = 1_000_000
MAX_INDEX = 2**31 - 1  # split indices index a data set's images
MAX_POINTS = 10**7  # landscape points: a 2D grid is at most 501², a line 10001 per segment

_S = r"/stages/[^/]+"
_L = r"/landscapes/[^/]+"
_IMAGES = Rule(r"/trigger/(images|control_images)", "u", (4,), (MAX_TRIGGERS, MAX_CHANNELS, MAX_IMAGE_SIZE, MAX_IMAGE_SIZE),
               what=f"uint8 (N, C, H, W) with N <= {MAX_TRIGGERS:,}, C <= {MAX_CHANNELS}, H, W <= {MAX_IMAGE_SIZE}")
RUNLOG_RULES: tuple[Rule, ...] = (
    Rule(r"/data/splits/[^/]+", "iu", (1,), (MAX_INDEX,), what="integer indices (n,)"),
    _IMAGES,
    Rule(r"/trigger/(labels|source_labels)", "iu", (1,), (MAX_TRIGGERS,), what=f"integer labels (N,), N <= {MAX_TRIGGERS:,}"),
    Rule(_S + r"/(train|eval)/[^/]+", "iuf", (1,), what="one number per row (n,)"),
    Rule(_S + r"/layers/(l2|cos)", "f", (2,), what="float (n_eval, n_layers)"),
    Rule(_S + r"/trajectory", "f", (2,), what="float (n_eval, n_params)"),
    Rule(_S + r"/weights/.+", "biuf", what="a tensor of numbers"),
    Rule(_L + r"/metrics/[^/]+", "f", (1, 2), max_elements=MAX_POINTS, what=f"float (ny, nx) or (n,), <= {MAX_POINTS:,} points"),
    Rule(_L + r"/line_metrics/[^/]+", "f", (1,), max_elements=MAX_POINTS, what=f"float (n,), <= {MAX_POINTS:,} points"),
    Rule(_L + r"/done", "b", (1, 2), max_elements=MAX_POINTS, what=f"bool (ny, nx) or (n,), <= {MAX_POINTS:,} points"),
    Rule(_L + r"/(x|y|t|segment|frac)", "iuf", (1,), max_elements=MAX_POINTS, what="coordinates (n,)"),
    Rule(_L + r"/model_coords", "f", (1, 2), (10_000, 2), what="float (k, 2) or (k,)"),
    Rule(_L + r"/origin", "f", (1,), what="float (P,)"),
    Rule(_L + r"/bend", "f", (1,), what="float (P,)"),
    Rule(_L + r"/directions", "f", (2,), (2, None), what="float (2, P)"),
    Rule(_L + r"/trajectory/[^/]+/[^/]+", "iuf", (1, 2), (None, 2), what="(n,) or (n, 2)"),
)


def _int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    return None


def check_data_info(path: str | Path, info: Any) -> dict[str, Any]:
    """/data info_json: a dict whose num_classes, shape, mean, std and classes have the documented types."""
    def bad(field: str, expected: str) -> RunLogError:
        value = info.get(field) if isinstance(info, dict) else info
        return RunLogError(f"{path}: /data info_json {field}: expected {expected}, got {value!r:.80}")

    if not isinstance(info, dict):
        raise bad("", "a JSON object")
    if "num_classes" in info:
        n = _int(info["num_classes"])
        if n is None or not 1 <= n <= MAX_CLASSES:
            raise bad("num_classes", f"a whole number from 1 to {MAX_CLASSES:,}")
    if "shape" in info:
        shape = info["shape"]
        if not (isinstance(shape, list) and len(shape) == 3 and all(_int(x) is not None for x in shape)
                and 1 <= shape[0] <= MAX_CHANNELS and all(1 <= x <= MAX_IMAGE_SIZE for x in shape[1:])):
            raise bad("shape", f"[C, H, W] with C <= {MAX_CHANNELS} and H, W from 1 to {MAX_IMAGE_SIZE}")
    for field in ("mean", "std"):
        if field in info:
            v = info[field]
            if not (isinstance(v, list) and 1 <= len(v) <= MAX_CHANNELS and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
                raise bad(field, "a list of finite numbers, one per channel")
            if field == "std" and any(x <= 0 for x in v):
                raise bad(field, "numbers > 0 (x is divided by them)")
    if "classes" in info and not (isinstance(info["classes"], list) and len(info["classes"]) <= MAX_CLASSES
                                  and all(isinstance(c, str) for c in info["classes"])):
        raise bad("classes", "a list of class names")
    return info


def check_trigger(path: str | Path, images: np.ndarray, labels: np.ndarray, source_labels: np.ndarray,
                  num_classes: int | None) -> None:
    """/trigger: one label and one source label per image, labels in [0, num_classes), sources in [-1, num_classes)."""
    n = images.shape[0]
    if len(labels) != n or len(source_labels) != n:
        raise RunLogError(f"{path}: /trigger holds {n} images, {len(labels)} labels and {len(source_labels)} "
                          "source labels (expected one of each per image)")
    top = num_classes if num_classes is not None else MAX_CLASSES
    if n and (labels.min() < 0 or labels.max() >= top):
        raise RunLogError(f"{path}: /trigger/labels: labels from {labels.min()} to {labels.max()}, expected "
                          f"0 to {top - 1} ({num_classes} classes)")
    if n and (source_labels.min() < -1 or source_labels.max() >= top):
        raise RunLogError(f"{path}: /trigger/source_labels: values from {source_labels.min()} to "
                          f"{source_labels.max()}, expected -1 (none) to {top - 1}")


def check_splits(path: str | Path, splits: dict[str, np.ndarray]) -> None:
    """/data/splits: indices >= 0; owner and attacker disjoint."""
    for name, idx in splits.items():
        if idx.size and idx.min() < 0:
            raise RunLogError(f"{path}: /data/splits/{name}: negative index {int(idx.min())} (expected indices >= 0)")
    if "owner" in splits and "attacker" in splits and np.intersect1d(splits["owner"], splits["attacker"]).size:
        raise RunLogError(f"{path}: /data/splits: owner and attacker share images (expected disjoint splits)")


def check_split_bounds(path: str | Path, splits: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    """Each split's indices within its data set (``sizes``: split name -> images in the set it indexes)."""
    for name, size in sizes.items():
        idx = splits.get(name)
        if idx is not None and idx.size and int(idx.max()) >= size:
            raise RunLogError(f"{path}: /data/splits/{name}: index {int(idx.max())} is outside the data set "
                              f"({size} images)")


def check_stage_attrs(path: str | Path, name: str, attrs: dict[str, Any]) -> None:
    """A stage's order, epochs and steps are whole numbers; status and message text."""
    for key in ("order", "epochs", "steps_per_epoch"):
        if key in attrs and _int(attrs[key]) is None:
            raise RunLogError(f"{path}: /stages/{name} attribute {key!r}: expected a whole number, got {attrs[key]!r:.60}")
    for key in ("status", "message"):
        if key in attrs and not isinstance(attrs[key], str):
            raise RunLogError(f"{path}: /stages/{name} attribute {key!r}: expected text, got {attrs[key]!r:.60}")
