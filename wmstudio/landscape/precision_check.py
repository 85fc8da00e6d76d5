"""Which precision a landscape is evaluated in: the ``precision`` setting, and the check behind ``auto``.

``auto`` takes bf16 only where the device does bf16 arithmetic natively (``wmstudio.precision.bf16_fast``)
**and** the centre of the grid and a few random grid points give the same metrics in both precisions:
every metric within the larger of a fixed floor (losses ``LOSS_RTOL`` relative, accuracies ``ACC_ATOL``
absolute) and ``SE_FRACTION`` of its own standard error over the evaluated images (fp32's). bf16 then
moves no figure by more than half the sampling error it already carries (its 95% interval is about four
times wider), while a model that bf16 really changes is refused. The standard error is part of the rule
because bf16's rounding flips near-tied predictions both ways: on a realistic ResNet-20 (85.9% base,
2,000 images a point) 0 to 21 predictions flipped a point, and a fixed 0.002 refused 4 of 54 points
(a net 5 images in 2,000) that the standard-error rule accepts (docs/landscape_speed.md).
Otherwise fp32, with the reason. The trigger images are evaluated in fp32 in both modes (evaluator.py),
so trigger accuracy never depends on the precision; the check compares all four metrics all the same.
The choice, its reason and the check's figures are stored as the landscape's attributes.
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

LOSS_RTOL = 0.005  # losses within 0.5% (relative) of fp32
ACC_ATOL = 0.002  # accuracies within 2 images in 1,000 of fp32
SE_FRACTION = 0.5  # ... or within half the metric's standard error over the images, whichever is larger
RANDOM_POINTS = 3  # checked besides the centre
TOLERANCE_WORDS = (f"each metric within {SE_FRACTION:g} x its standard error over the images or, where larger, "
                   f"{LOSS_RTOL:.1%} relative (losses) / {ACC_ATOL:g} absolute (accuracies); trigger metrics "
                   f"always fp32")


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "fp32" | "bf16": what the points are evaluated in
    reason: str
    # per checked point: index, <metric>_fp32/_bf16 and <metric>_se (fp32's standard error over the images)
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


def disagreement(fp32: Values, bf16: Values, se: Values | None = None, loss_rtol: float = LOSS_RTOL,
                 acc_atol: float = ACC_ATOL, se_fraction: float = SE_FRACTION) -> str:
    """The first metric outside the tolerance, described ("" when all agree; NaN in both agrees). A metric's
    tolerance is its floor (``loss_rtol`` x |fp32 loss|, ``acc_atol``) or ``se_fraction`` x its standard
    error in ``se``, whichever is larger (no ``se``, or a NaN one: the floor)."""
    for m in METRICS:
        a, b = fp32[m], bf16[m]
        if math.isnan(a) and math.isnan(b):
            continue
        floor = loss_rtol * abs(a) if m.endswith("_loss") else acc_atol
        err = (se or {}).get(m, float("nan"))
        by_se = se_fraction * err if math.isfinite(err) else 0.0
        tol = max(floor, by_se)
        if not abs(b - a) <= tol + 1e-12:
            why = (f"{se_fraction:g} x its standard error {err:.3g}" if by_se > floor else
                   f"{loss_rtol:.2%}" if m.endswith("_loss") else f"{acc_atol:g}")
            return f"{m} {b:.6g} in bf16 against {a:.6g} in fp32 (more than {why} apart)"
    return ""


def choose_precision(setting: str, device: torch.device, ev: PointEvaluator | None = None,
                     points: GridPoints | LinePoints | None = None, seed: int = 0,
                     flags: frozenset[str] | None = None, loss_rtol: float = LOSS_RTOL,
                     acc_atol: float = ACC_ATOL, se_fraction: float = SE_FRACTION) -> PrecisionChoice:
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
            se = ev.standard_errors()
            ev.precision = "bf16"
            b = ev.evaluate(flat, stats)
            row: dict[str, float] = {"index": int(k)}
            for m in METRICS:
                row[f"{m}_fp32"], row[f"{m}_bf16"], row[f"{m}_se"] = a[m], b[m], se[m]
            figures.append(row)
            why_not = disagreement(a, b, se, loss_rtol, acc_atol, se_fraction)
            if why_not and not problem:
                problem = f"point {int(k)}: {why_not}"
    finally:
        ev.precision = "fp32"
    if problem:
        return PrecisionChoice("fp32", f"auto: the bf16 check failed at {problem}", figures)
    return PrecisionChoice("bf16", f"auto: {why}, and {len(figures)} checked points agree with fp32", figures)


def precision_lines(attrs: dict[str, object]) -> list[str]:
    """A stored landscape's precision, its reason and the check's figures (clean loss and accuracy,
    fp32/bf16, per checked point), as lines to print."""
    lines = [f"precision: {attrs.get('eval_precision')} ({attrs.get('eval_precision_reason', '')})"]
    rows = attrs.get("eval_precision_check")
    if isinstance(rows, list) and rows:
        lines.append(f"bf16 check ({attrs.get('eval_precision_tolerance', '')}), fp32/bf16:")
        for r in rows:
            if not isinstance(r, dict):
                continue
            se = (f" (standard errors {r['test_loss_se']:.3g}, {r['test_acc_se']:.4f})"
                  if "test_loss_se" in r else "")  # a landscape checked before the rule had them: none
            lines.append(f"  point {int(r['index'])}: test loss {r['test_loss_fp32']:.5g}/{r['test_loss_bf16']:.5g}, "
                         f"test acc {r['test_acc_fp32']:.4f}/{r['test_acc_bf16']:.4f}{se}")
    return lines
