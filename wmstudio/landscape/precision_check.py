"""Which precision a landscape is evaluated in: the ``precision`` setting, and the check behind ``auto``.

``auto`` takes bf16 only where the device does bf16 arithmetic natively (``wmstudio.precision.bf16_fast``)
**and** the centre of the grid and a few random grid points give the same metrics in both precisions:
every loss within ``LOSS_RTOL`` (1%) of fp32's, relative, and every accuracy within ``ACC_ATOL`` (0.005,
half a percentage point), absolute. The check's figures hold, per checked point, how many clean images
were right only in bf16 and only in fp32, so the direction of the changes can be read back.

bf16 rounds every activation, so near-tied predictions flip: on a realistic ResNet-20 (85.9% base, 2,000
images a point, 54 probe points, benchmarks/precision_tolerance.py) 0 to 16 images changed a point, the
accuracy moved by up to 0.005 and the loss by up to 0.81%, and the first rule (0.5%, 0.002) refused 10
of the 54 points, so ``auto`` kept fp32 or took bf16 by which points its seed drew. The bounds were set
on those figures (docs/landscape_speed.md). They bound what bf16 may change at the checked points; they
do not detect a small bias as such (over the 54 points bf16 was slightly worse: 92 images became right,
132 wrong). With under 200 clean images one net flip is more than 0.005: such evaluations keep fp32
unless the flips cancel out. Otherwise fp32, with the reason. The trigger images are evaluated in fp32 in
both modes (evaluator.py), so trigger accuracy never depends on the precision; the check compares all
four metrics all the same. The choice, its reason and the figures are stored as the landscape's attributes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from wmstudio.landscape.evaluator import PointEvaluator, Values
from wmstudio.landscape.points import GridPoints, LinePoints
from wmstudio.landscape.spec import METRICS
from wmstudio.precision import bf16_fast

LOSS_RTOL = 0.01  # losses within 1% (relative) of fp32
ACC_ATOL = 0.005  # accuracies within 5 images in 1,000 of fp32
RANDOM_POINTS = 3  # checked besides the centre
TOLERANCE_WORDS = (f"losses within {LOSS_RTOL:.0%} relative, accuracies within {ACC_ATOL:g} absolute; trigger "
                   f"metrics always fp32")


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "fp32" | "bf16": what the points are evaluated in
    reason: str
    # per checked point: index, <metric>_fp32/_bf16, and test_acc_up/_down: the clean images right only in
    # bf16 / only in fp32
    figures: list[dict[str, float]] = field(default_factory=list)

    def attrs(self) -> dict[str, str]:
        """The landscape's attributes that record the choice."""
        return {"eval_precision": self.precision, "eval_precision_reason": self.reason,
                "eval_precision_check": json.dumps(self.figures),
                "eval_precision_tolerance": TOLERANCE_WORDS}


def check_indices(shape: tuple[int, ...], seed: int, k: int = RANDOM_POINTS) -> np.ndarray:
    """The grid's centre, then ``k`` other grid points drawn with ``seed`` (flat indices)."""
    n = int(np.prod(shape))
    centre = int(np.ravel_multi_index(tuple(s // 2 for s in shape), shape))
    others = np.setdiff1d(np.arange(n), [centre])
    rng = np.random.default_rng(seed)
    pick = rng.choice(others, size=min(k, len(others)), replace=False) if len(others) else np.zeros(0, int)
    return np.concatenate([[centre], np.sort(pick)]).astype(np.int64)


def disagreement(fp32: Values, bf16: Values, flips: tuple[int, int] | None = None, loss_rtol: float = LOSS_RTOL,
                 acc_atol: float = ACC_ATOL) -> str:
    """The first metric outside the tolerance, described ("" when all agree; NaN in both agrees).
    ``flips``: (up, down), the clean images right only in bf16 and right only in fp32, named in the
    description of a clean accuracy that is outside."""
    for m in METRICS:
        a, b = fp32[m], bf16[m]
        if math.isnan(a) and math.isnan(b):
            continue
        if m.endswith("_loss"):
            if not abs(b - a) <= loss_rtol * abs(a):
                return f"{m} {b:.6g} in bf16 against {a:.6g} in fp32 (more than {loss_rtol:.2%} apart)"
        elif not abs(b - a) <= acc_atol + 1e-12:
            changed = (f"; {flips[0]} images right only in bf16, {flips[1]} only in fp32"
                       if m == "test_acc" and flips is not None else "")
            return f"{m} {b:.6g} in bf16 against {a:.6g} in fp32 (more than {acc_atol:g} apart{changed})"
    return ""


def choose_precision(setting: str, device: torch.device, ev: PointEvaluator | None = None,
                     points: GridPoints | LinePoints | None = None, seed: int = 0,
                     flags: frozenset[str] | None = None, loss_rtol: float = LOSS_RTOL,
                     acc_atol: float = ACC_ATOL) -> PrecisionChoice:
    """The precision for ``setting`` (auto | fp32 | bf16) on ``device``. ``auto`` on a device with fast
    bf16 runs the check on ``ev`` at ``points`` (``ev`` is left in fp32 afterwards); ``flags`` stands in
    for the CPU's feature flags (tests simulate a processor with or without bf16)."""
    if setting == "fp32":
        return PrecisionChoice("fp32", "set by the landscape's precision")
    fast, why = bf16_fast(device, flags)
    if setting == "bf16":
        return PrecisionChoice("bf16", "set by the landscape's precision" + ("" if fast else f"; slow here: {why}"))
    if not fast:
        return PrecisionChoice("fp32", f"auto: {why}")
    if ev is None or points is None:
        raise ValueError("the bf16 check needs the evaluator and the landscape's points")
    figures: list[dict[str, float]] = []
    problem = ""
    buf = torch.empty(ev.pv.numel, device=ev.inputs.device)
    try:
        for k in check_indices(tuple(points.shape), seed):
            flat, stats = points.params(int(k), buf), points.stats(int(k))
            ev.precision = "fp32"
            a = ev.evaluate(flat, stats)
            right32 = ev.clean_correct()
            ev.precision = "bf16"
            b = ev.evaluate(flat, stats)
            right16 = ev.clean_correct()
            up, down = int((right16 & ~right32).sum()), int((right32 & ~right16).sum())
            row: dict[str, float] = {"index": int(k)}
            for m in METRICS:
                row[f"{m}_fp32"], row[f"{m}_bf16"] = a[m], b[m]
            row["test_acc_up"], row["test_acc_down"] = up, down
            figures.append(row)
            why_not = disagreement(a, b, (up, down), loss_rtol, acc_atol)
            if why_not and not problem:
                problem = f"point {int(k)}: {why_not}"
    finally:
        ev.precision = "fp32"
    if problem:
        return PrecisionChoice("fp32", f"auto: the bf16 check failed at {problem}", figures)
    return PrecisionChoice("bf16", f"auto: {why}, and {len(figures)} checked points agree with fp32", figures)


def _changed(up: int, down: int) -> str:
    """ " (3 predictions changed: 1 right only in bf16, 2 only in fp32)" for a checked point."""
    if up + down == 0:
        return " (no prediction changed)"
    n = up + down
    return f" ({n} prediction{'s' if n != 1 else ''} changed: {up} right only in bf16, {down} only in fp32)"


def precision_lines(attrs: dict[str, object]) -> list[str]:
    """A stored landscape's precision, its reason and the check's figures (clean loss and accuracy,
    fp32/bf16, per checked point), as lines to print."""
    lines = [f"precision: {attrs.get('eval_precision')} ({attrs.get('eval_precision_reason', '')})"]
    rows = attrs.get("eval_precision_check")
    if isinstance(rows, list) and rows:
        lines.append(f"bf16 check ({attrs.get('eval_precision_tolerance', '')}), fp32/bf16:")
        for r in rows:
            try:  # (a landscape checked before 2026-12-06 has no up/down counts: its lines end without them)
                changed = _changed(int(r["test_acc_up"]), int(r["test_acc_down"])) if "test_acc_up" in r else ""
                lines.append(f"  point {int(r['index'])}: test loss {float(r['test_loss_fp32']):.5g}/"
                             f"{float(r['test_loss_bf16']):.5g}, test acc {float(r['test_acc_fp32']):.4f}/"
                             f"{float(r['test_acc_bf16']):.4f}{changed}")
            except (TypeError, ValueError, KeyError, OverflowError):  # a log written by something else
                lines.append(f"  (a checked point the log holds in another form: {str(r)[:80]})")
    return lines
