"""What the Compare view draws for many runs, without Qt: distinct colours, colours by a setting,
TensorBoard-style smoothing, alignment on a stage's start, and the run filter.

- :func:`distinct_colors` gives ``n`` colours told apart by eye: ten hand-picked ones first, then each
  next colour the one farthest (in the perceptual OKLab space) from all before it, among colours of
  medium lightness (readable on a light and a dark background). The list for ``n`` begins with the
  list for ``n - 1``, so a run keeps its colour when more runs are opened.
- :func:`setting_colors` colours runs by one setting: a perceptual sequential scale (viridis) for
  numbers, on a log scale when they span a factor of 20 or more (learning rates), distinct colours
  for other values, grey where a run does not record the setting.
- :func:`ema` is TensorBoard's smoothing (an exponential moving average with its start-up bias
  removed), restarted at every stage boundary so that one stage's values never leak into the next.
- :func:`align` keeps the evaluations of one stage with x = steps since that stage began, so runs
  whose stage started at different global steps (a sweep cell's attack at 0, the demo's at 120) overlay.
- :func:`run_matches` is the filter: every word of the query must match the run's name or one of its
  settings (``lr=0.01`` matches ``finetune.lr = 0.01``; ``lr`` alone matches any setting naming lr).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from wmstudio.stage_order import ATTACK_STAGES

GLOBAL = ""  # the alignment key of "global step"
ATTACK = "attack"  # finetune, extract and attack stages align together: each is a run's attack
ALIGN_LABELS = {GLOBAL: "global step", "pretrain": "steps since clean pre-training began",
                "embed": "steps since embedding began", ATTACK: "steps since the attack began",
                "restore": "steps since restoration began"}
MISSING_COLOR = "#9a9a9a"  # a run that does not record the setting it is coloured by
# the first ten: Tableau 10's hues, without its grey (which is kept for missing values)
FIRST_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
                "#9c755f", "#17becf")
# viridis at 9 evenly spaced points (matplotlib's values), interpolated linearly
_VIRIDIS = ((0.267, 0.005, 0.329), (0.283, 0.141, 0.458), (0.254, 0.265, 0.530), (0.207, 0.372, 0.553),
            (0.164, 0.471, 0.558), (0.128, 0.567, 0.551), (0.135, 0.659, 0.518), (0.267, 0.749, 0.441),
            (0.478, 0.821, 0.318), (0.741, 0.873, 0.150), (0.993, 0.906, 0.144))


# ------------------------------------------------------------------ colours
def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.abs(c) ** (1 / 2.4) - 0.055)


def to_oklab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) to OKLab (Björn Ottosson's transform)."""
    lin = _srgb_to_linear(np.asarray(rgb, dtype=np.float64))
    m1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
                   [0.0883024619, 0.2817188376, 0.6299787005]])
    m2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468], [1.9779984951, -2.4285922050, 0.4505937099],
                   [0.0259040371, 0.7827717662, -0.8086757660]])
    return np.cbrt(lin @ m1.T) @ m2.T


def _from_oklab(lab: np.ndarray) -> np.ndarray:
    m2inv = np.array([[1.0, 0.3963377774, 0.2158037573], [1.0, -0.1055613458, -0.0638541728],
                      [1.0, -0.0894841775, -1.2914855480]])
    m1inv = np.array([[4.0767416621, -3.3077115913, 0.2309699292], [-1.2684380046, 2.6097574011, -0.3413193965],
                      [-0.0041960863, -0.7034186147, 1.7076147010]])
    return _linear_to_srgb((lab @ m2inv.T) ** 3 @ m1inv.T)


def hex_to_rgb(color: str) -> tuple[float, float, float]:
    c = color.lstrip("#")
    return int(c[0:2], 16) / 255, int(c[2:4], 16) / 255, int(c[4:6], 16) / 255


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(min(1.0, max(0.0, float(v))) * 255):02x}" for v in rgb)


@lru_cache(maxsize=1)
def _candidates() -> tuple[np.ndarray, list[str]]:
    """OKLab points (and their sRGB hex) of medium lightness inside the sRGB gamut."""
    lightness, chroma, hue = np.meshgrid(np.linspace(0.48, 0.80, 6), (0.07, 0.10, 0.13, 0.16, 0.19),
                                         np.deg2rad(np.arange(0, 360, 6)), indexing="ij")
    lab = np.stack([lightness.ravel(), (chroma * np.cos(hue)).ravel(), (chroma * np.sin(hue)).ravel()], axis=1)
    rgb = _from_oklab(lab)
    inside = np.all((rgb >= -1e-6) & (rgb <= 1 + 1e-6), axis=1)
    rgb = np.clip(rgb[inside], 0, 1)
    return to_oklab(rgb), [_hex(c) for c in rgb]


@lru_cache(maxsize=8)
def _greedy(n: int) -> tuple[str, ...]:
    first = list(FIRST_COLORS[:n])
    if n <= len(FIRST_COLORS):
        return tuple(first)
    lab, names = _candidates()
    chosen = to_oklab(np.array([hex_to_rgb(c) for c in first]))
    nearest = np.min(np.linalg.norm(lab[:, None, :] - chosen[None, :, :], axis=2), axis=1)
    out = list(first)
    while len(out) < n:
        k = int(np.argmax(nearest))
        out.append(names[k])
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[k], axis=1))
    return tuple(out)


def distinct_colors(n: int) -> list[str]:
    """``n`` colours (hex), each as far from those before it as medium-lightness colours allow."""
    if n <= 0:
        return []
    size = 16
    while size < n:
        size *= 2
    return list(_greedy(size)[:n])  # computed for a power of two: growing by one run costs nothing


def min_distance(colors: Sequence[str]) -> float:
    """The smallest OKLab distance between two of ``colors`` (about 0.02 is a just-noticeable step)."""
    lab = to_oklab(np.array([hex_to_rgb(c) for c in colors]))
    d = np.linalg.norm(lab[:, None, :] - lab[None, :, :], axis=2)
    d[np.diag_indices(len(colors))] = np.inf
    return float(d.min()) if len(colors) > 1 else math.inf


def viridis(t: float) -> str:
    """The viridis colour at ``t`` in [0, 1]."""
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    k = min(int(t), len(_VIRIDIS) - 2)
    a, b = np.asarray(_VIRIDIS[k]), np.asarray(_VIRIDIS[k + 1])
    return _hex(a + (t - k) * (b - a))


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def setting_colors(values: Sequence[Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """A colour per run for one setting's ``values`` (None: not recorded), and the key: (value text, colour)
    entries for a legend (numbers: up to five values across the scale)."""
    present = [v for v in values if v is not None]
    numbers = [_number(v) for v in present]
    if present and all(x is not None for x in numbers) and len(set(numbers)) > 2:
        nums = [float(x) for x in numbers if x is not None]
        lo, hi = min(nums), max(nums)
        log = lo > 0 and hi / lo >= 20

        def place(x: float) -> float:
            if hi == lo:
                return 0.5
            return (math.log(x / lo) / math.log(hi / lo)) if log else (x - lo) / (hi - lo)

        colors = [MISSING_COLOR if _number(v) is None else viridis(place(float(v))) for v in values]
        shown = sorted(set(nums))
        picks = shown if len(shown) <= 5 else [shown[round(i * (len(shown) - 1) / 4)] for i in range(5)]
        key = [(f"{x:g}", viridis(place(x))) for x in picks]
    else:
        order: list[str] = []
        for v in present:
            if repr(v) not in order:
                order.append(repr(v))
        palette = dict(zip(order, distinct_colors(len(order)), strict=True))
        colors = [MISSING_COLOR if v is None else palette[repr(v)] for v in values]
        key = [(_text(v), palette[repr(v)]) for v in _unique(present)]
    if any(v is None for v in values):
        key.append(("not recorded", MISSING_COLOR))
    return colors, key


def _unique(values: Sequence[Any]) -> list[Any]:
    seen: list[str] = []
    out = []
    for v in values:
        if repr(v) not in seen:
            seen.append(repr(v))
            out.append(v)
    return out


def _text(v: Any) -> str:
    return f"{v:g}" if _number(v) is not None else str(v)


# ------------------------------------------------------------------ smoothing
def ema(y: np.ndarray, weight: float, starts: Sequence[int] = (), log: bool = False) -> np.ndarray:
    """TensorBoard's smoothing of ``y``: ``last = weight * last + (1 - weight) * value``, divided by
    ``1 - weight ** n`` (n: values seen) so that the first values are not pulled towards 0. Restarts at
    every index in ``starts`` (stage boundaries); a missing value (NaN) stays missing and is skipped.
    ``log``: smooth log10 of the values (p-values, drawn on a log axis)."""
    values = np.asarray(y, dtype=np.float64)
    if weight <= 0 or not len(values):
        return values.copy()
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(values)
    out = np.full(len(values), np.nan)
    bounds = sorted({0, len(values), *(i for i in starts if 0 < i < len(values))})
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part = values[lo:hi]
        finite = np.isfinite(part)
        if finite.any():
            seen = np.arange(1, int(finite.sum()) + 1)
            out[lo:hi][finite] = _ema_run(part[finite], weight) / (1 - weight ** seen)
    return 10 ** out if log else out


def _ema_run(v: np.ndarray, w: float) -> np.ndarray:
    """``last_k = w * last_(k-1) + (1 - w) * v_k`` from ``last_0 = 0``, vectorised: in blocks short enough that
    ``w ** -k`` stays finite, ``last_k = w^k * (last + (1 - w) * cumsum(v_j / w^j))``."""
    block = max(1, int(200 / -math.log10(w))) if w < 1 else len(v)
    out = np.empty(len(v))
    last = 0.0
    for s in range(0, len(v), block):
        seg = v[s:s + block]
        power = w ** np.arange(1, len(seg) + 1)
        acc = power * (last + (1 - w) * np.cumsum(seg / power))
        out[s:s + len(seg)] = acc
        last = float(acc[-1])
    return out


# ------------------------------------------------------------------ alignment
def align_key(stage: str) -> str:
    """The alignment a stage belongs to (every attack stage: ``attack``)."""
    return ATTACK if stage in ATTACK_STAGES else stage


def alignments(stage_names: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(key, label) of global step and of each stage some run has, in pipeline order."""
    keys = {align_key(n) for names in stage_names for n in names}
    order = [k for k in ALIGN_LABELS if k != GLOBAL and k in keys] + sorted(keys - set(ALIGN_LABELS))
    return [(GLOBAL, ALIGN_LABELS[GLOBAL])] + [(k, ALIGN_LABELS.get(k, f"steps since {k} began")) for k in order]


def align(steps: np.ndarray, values: np.ndarray, row_stage: np.ndarray, stages: Sequence[tuple[str, int]],
          key: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The points to draw: (x, y, indices where a stage begins). ``row_stage``: each row's stage index into
    ``stages`` ((name, first global step) each). Global (``key`` ""): every row at its global step. A stage
    key: only that stage's rows (the last stage of the key when a run has several), x = steps since its start."""
    steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
    row_stage = np.asarray(row_stage, dtype=np.int64)
    if key == GLOBAL:
        starts = [int(i) for i in np.flatnonzero(np.diff(row_stage)) + 1]
        return steps, values, starts
    picks = [k for k, (name, _start) in enumerate(stages) if align_key(name) == key]
    if not picks:
        return np.zeros(0), np.zeros(0), []
    k = picks[-1]
    keep = row_stage == k
    return steps[keep] - float(stages[k][1]), values[keep], []


# ------------------------------------------------------------------ filtering
def run_matches(query: str, title: str, settings: Mapping[str, Any]) -> bool:
    """Whether a run matches every word of ``query`` (case-insensitive). A word ``key=value`` needs a setting
    whose dotted name ends with ``key`` and whose value equals ``value`` (as a number where both are); other
    words match part of the run's name or of a ``key = value`` of its settings."""
    texts = [title.lower()] + [f"{k} = {v}".lower() for k, v in settings.items()]
    for word in query.lower().split():
        if "=" in word:
            key, _, want = word.partition("=")
            if not any(_key_matches(k, key) and _value_equals(v, want) for k, v in settings.items()):
                return False
        elif not any(word in t for t in texts):
            return False
    return True


def _key_matches(key: str, part: str) -> bool:
    key = key.lower()
    return not part or key == part or key.endswith("." + part) or part in key.split(".")[-1]


def _value_equals(value: Any, want: str) -> bool:
    number = _number(value)
    if number is not None:
        try:
            return math.isclose(number, float(want), rel_tol=1e-9, abs_tol=0.0)
        except ValueError:
            return False
    return str(value).lower() == want.strip("\"'")
