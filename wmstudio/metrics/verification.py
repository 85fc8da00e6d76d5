"""Ownership verification: how unlikely is this trigger accuracy for a model that never saw the triggers?

Under the null hypothesis an independent model agrees with each trigger label with probability
``p0`` (by default chance, 1/num_classes), independently per trigger; the p-value is the binomial
upper tail P[X >= k] for k matches out of n.
"""

from __future__ import annotations

import math


def binomial_p_value(k: int, n: int, p0: float) -> float:
    if n <= 0:
        return float("nan")
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 must be in (0, 1), got {p0}")
    if k <= 0:
        return 1.0
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p0) + (n - i) * math.log1p(-p0)
        for i in range(k, n + 1)
    ]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))
