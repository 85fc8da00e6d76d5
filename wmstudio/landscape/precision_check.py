"""Which precision a landscape is evaluated in: the ``precision`` setting, and the check behind ``auto``.

``auto`` takes bf16 only where the device does bf16 arithmetic natively (``wmstudio.precision.bf16_fast``)
**and** the centre of the grid and a few random grid points give the same metrics in both precisions:
every loss within ``LOSS_RTOL`` (relative) and every accuracy within ``ACC_ATOL`` (absolute) of fp32.
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
RANDOM_POINTS = 3  # checked besides the centre


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "fp32" | "bf16": what the points are evaluated in
    reason: str
    figures: list[dict[str, float]] = field(default_factory=list)  # per checked point: index, <metric>_fp32/_bf16

    def attrs(self) -> dict[str, str]:
        """The landscape's attributes that record the choice."""
        return {"eval_precision": self.precision, "eval_precision_reason": self.reason,
                "eval_precision_check": json.dumps(self.figures),
                "eval_precision_tolerance": f"loss within {LOSS_RTOL:.1%} relative, accuracy within "
                                            f"{ACC_ATOL:g} absolute; trigger metrics always fp32"}


def check_indices(shape: tuple[int, ...], seed: int, k: int = RANDOM_POINTS) -> np.ndarray:
    """The grid's centre, then ``k`` other grid points drawn with ``seed`` (flat indices)."""
    n = int(np.prod(shape))
    centre = int(np.ravel_multi_index(tuple(s // 2 for s in shape), shape))
    others = np.setdiff1d(np.arange(n), [centre])
    rng = np.random.default_rng(seed)
    pick = rng.choice(others, size=min(k, len(others)), replace=False) if len(others) else np.zeros(0, int)
    return np.concatenate([[centre], np.sort(pick)]).astype(np.int64)


def disagreement(fp32: Values, bf16: Values, loss_rtol: float = LOSS_RTOL, acc_atol: float = ACC_ATOL) -> str:
    """The first metric outside the tolerance, described ("" when all agree; NaN in both agrees)."""
    for m in METRICS:
        a, b = fp32[m], bf16[m]
        if math.isnan(a) and math.isnan(b):
            continue
        if m.endswith("_loss"):
            if not abs(b - a) <= loss_rtol * abs(a):
                return f"{m} {b:.6g} in bf16 against {a:.6g} in fp32 (more than {loss_rtol:.2%} apart)"
        elif not abs(b - a) <= acc_atol + 1e-12:
            return f"{m} {b:.6g} in bf16 against {a:.6g} in fp32 (more than {acc_atol:g} apart)"
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
            ev.precision = "bf16"
            b = ev.evaluate(flat, stats)
            row: dict[str, float] = {"index": int(k)}
            for m in METRICS:
                row[f"{m}_fp32"], row[f"{m}_bf16"] = a[m], b[m]
            figures.append(row)
            why_not = disagreement(a, b, loss_rtol, acc_atol)
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
        lines += [f"  point {int(r['index'])}: test loss {r['test_loss_fp32']:.5g}/{r['test_loss_bf16']:.5g}, "
                  f"test acc {r['test_acc_fp32']:.4f}/{r['test_acc_bf16']:.4f}" for r in rows if isinstance(r, dict)]
    return lines
