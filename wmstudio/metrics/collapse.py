"""Collapse and bias flags: a model that cannot keep or lose a watermark.

A model whose test accuracy is within ``margin`` of chance (1/K), or whose most frequent prediction
takes more than ``majority`` of the test set, says nothing about a watermark: a collapsed model that
answers the target class for everything has "trigger accuracy" 1.0 without one. Such a model is
flagged, and reports never count it as a survival, a removal or a recovery
(../shared/design/measurement.md). Torch-free, so reports and the app use the same rule.
"""

from __future__ import annotations

import math

COLLAPSE_MARGIN = 0.10  # test accuracy below chance + this is "near chance"
COLLAPSE_MAJORITY = 0.50  # the most frequent prediction taking more than this share is "collapsed to a class"


def majority_share(predictions: object, num_classes: int) -> float:
    """Share of the most frequent class among ``predictions`` (a 1-D integer array or tensor)."""
    import numpy as np

    p = np.asarray(predictions).reshape(-1)
    if p.size == 0:
        return math.nan
    counts = np.bincount(p.astype(np.int64).clip(0, max(num_classes - 1, 0)), minlength=num_classes)
    return float(counts.max() / p.size)


def collapse_reason(test_acc: float, share: float, num_classes: int,
                    margin: float = COLLAPSE_MARGIN, majority: float = COLLAPSE_MAJORITY) -> str:
    """Why the model is flagged as collapsed, or "" when it is not (NaN inputs are not flagged)."""
    reasons = []
    chance = 1.0 / num_classes if num_classes > 0 else math.nan
    if math.isfinite(test_acc) and math.isfinite(chance) and test_acc < chance + margin:
        reasons.append(f"test accuracy {test_acc:.3f} is within {margin:g} of chance ({chance:.3f})")
    if math.isfinite(share) and share > majority:
        reasons.append(f"one class takes {share:.0%} of the test predictions (limit {majority:.0%})")
    return "; ".join(reasons)
