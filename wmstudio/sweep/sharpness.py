"""Does the sharpness right after embedding predict how much of the watermark survives an attack?

Over a sweep folder: each finished watermarked model (``embeds/*.h5``) carries the curvature of its
``embed`` stage in its log (``curvature_json``; ``measure_embeds`` computes what is missing, clean
and trigger loss: top Hessian eigenvalue and Hutchinson trace); each finished attack on it carries
the watermark effect after the attack (trigger accuracy - control) in its record. For every attack
setting (the run's values that are not the embed's, e.g. one learning rate) and every curvature
measure, the Spearman rank correlation between the measure and the effect over the watermarked
models, with the Fieller-Hartley-Pearson 95% interval (Fisher z with variance 1.06 / (n - 3); none
below 4 models). A positive rho: sharper models keep more of the watermark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.errors import RunLogError
from wmstudio.status import Status
from wmstudio.sweep.records import is_finished, load_sweep_folder, read_json

STAGE = "embed"
OUTCOME = "attacked.trigger_effect"
MEASURES = {  # name -> (curvature key in the log, field of the result)
    "clean top eigenvalue": ("clean", "eigenvalues"),
    "trigger top eigenvalue": ("trigger", "eigenvalues"),
    "clean trace": ("clean", "trace"),
    "trigger trace": ("trigger", "trace"),
}


@dataclass
class Correlation:
    attack: str
    measure: str
    n: int
    rho: float
    lo: float | None
    hi: float | None
    points: list[dict[str, Any]] = field(default_factory=list)  # embed_id, values, x, y


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), dtype=float)
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tied = x == v
        if tied.sum() > 1:
            r[tied] = r[tied].mean()
    return r


def spearman(x: list[float], y: list[float]) -> tuple[float, float | None, float | None]:
    """(rho, lo, hi): Spearman's rho with its Fieller 95% interval (None with fewer than 4 pairs); rho is
    NaN where either side has no spread."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError("x and y differ in length")
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan, None, None
    ra, rb = ranks(a), ranks(b)
    rho = float(np.corrcoef(ra, rb)[0, 1])
    if len(a) < 4:
        return rho, None, None
    z = math.atanh(max(-0.999999, min(0.999999, rho)))
    half = 1.959964 * math.sqrt(1.06 / (len(a) - 3))
    return rho, math.tanh(z - half), math.tanh(z + half)


def stored_sharpness(log: Path) -> dict[str, float]:
    """The measures of ``MEASURES`` the embed stage's stored curvature holds (others left out)."""
    from wmstudio.curvature.job import read

    held = read(log).get(STAGE, {})
    out: dict[str, float] = {}
    for name, (key, part) in MEASURES.items():
        result = held.get(key) or {}
        value = result.get(part)
        if part == "eigenvalues" and isinstance(value, list) and value:
            value = value[0]
        if part == "trace" and isinstance(value, dict):
            value = value.get("mean")
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[name] = float(value)
    return out


def finished_embeds(folder: Path) -> dict[str, Path]:
    out = {}
    for rec in sorted((folder / "embeds").glob("*.json")):
        log = rec.with_suffix(".h5")
        if is_finished(rec, log):
            out[rec.stem] = log
    return out


def measure_embeds(folder: str | Path, losses: tuple[str, ...] = ("clean", "trigger"), images: int = 1000,
                   probes: int = 10, trust_code: bool = False,
                   say: Callable[[str], None] = lambda _t: None) -> int:
    """Compute and store the embed stage's curvature of every finished watermarked model that lacks it;
    returns how many measurements were made."""
    from wmstudio.curvature.job import CurvatureSpec, read
    from wmstudio.curvature.of_log import curvature_of_log

    made = 0
    for embed_id, log in finished_embeds(Path(folder)).items():
        held = read(log).get(STAGE, {})
        for loss in losses:
            if loss in held:
                continue
            spec = CurvatureSpec(loss=loss, top_k=1, probes=probes, images=images)
            say(f"{embed_id}: {loss} loss curvature of the embed stage ...")
            curvature_of_log(log, STAGE, spec, trust_code=trust_code)
            made += 1
    return made


def correlations(folder: str | Path, sharpness: dict[str, dict[str, float]] | None = None) -> list[Correlation]:
    """Per attack setting and measure, the rank correlation of the embed's sharpness with the effect after
    the attack, over the watermarked models (``sharpness``: embed id -> measures; default: read from the
    embed logs). Collapsed attacked models are left out (their effect is not a watermark's)."""
    folder = Path(folder)
    _, records = load_sweep_folder(folder)
    if sharpness is None:
        sharpness = {eid: stored_sharpness(log) for eid, log in finished_embeds(folder).items()}
    embed_values: dict[str, dict[str, Any]] = {}
    for rec in (folder / "embeds").glob("*.json"):
        data = read_json(rec) or {}
        embed_values[rec.stem] = data.get("values") or {}
    groups: dict[str, list[tuple[str, dict[str, Any], float]]] = {}
    for rec in records:
        finals = rec.get("finals") or {}
        effect = finals.get(OUTCOME)
        if rec.get("kind") != "attack" or rec.get("status") != Status.FINISHED or not isinstance(effect, (int, float)):
            continue
        if finals.get("attacked.collapsed"):
            continue
        own = embed_values.get(rec.get("embed_id", ""), {})
        attack = ", ".join(f"{k}={v}" for k, v in rec["values"].items() if k not in own) or "attack"
        groups.setdefault(attack, []).append((rec["embed_id"], rec["values"], float(effect)))
    out = []
    for attack, rows in sorted(groups.items()):
        for measure in MEASURES:
            pts = [{"embed_id": eid, "values": values, "x": sharpness[eid][measure], "y": y}
                   for eid, values, y in rows if measure in sharpness.get(eid, {})]
            if not pts:
                continue
            rho, lo, hi = spearman([p["x"] for p in pts], [p["y"] for p in pts])
            out.append(Correlation(attack, measure, len(pts), rho, lo, hi, pts))
    return out


def markdown(rows: list[Correlation]) -> str:
    if not rows:
        raise RunLogError("no finished attack on a watermarked model with a stored curvature; run with --measure "
                          "to compute the embed stage's curvature first")
    lines = ["| attack | sharpness measure | models | Spearman rho [95%] |", "|---|---|---|---|"]
    for r in rows:
        iv = f" [{r.lo:+.2f}, {r.hi:+.2f}]" if r.lo is not None and r.hi is not None else " (no interval: n < 4)"
        rho = "undefined (no spread)" if math.isnan(r.rho) else f"{r.rho:+.2f}{iv}"
        lines.append(f"| {r.attack} | {r.measure} | {r.n} | {rho} |")
    return "\n".join(lines) + "\n"


def as_json(rows: list[Correlation]) -> list[dict[str, Any]]:
    return [{**asdict(r), "rho": None if math.isnan(r.rho) else r.rho} for r in rows]
