"""Means over seeds and their 95% confidence intervals, for the sweep report.

The interval is Student's t-interval, ``mean +- t(0.975, n - 1) * sd / sqrt(n)`` with the sample
standard deviation (ddof 1): exact for normally distributed run-to-run variation, and the usual
choice for the 3-10 seeds a sweep affords (a bootstrap is unreliable that small). One seed gives no
interval (NaN bounds); identical values give a zero-width one. Accuracies are bounded by [0, 1] and
the interval is not clipped, so a bound outside [0, 1] says plainly that the seeds are too few.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

REPLICATE_AXES = ("run.seed", "data.split_seed")  # axes a report averages over instead of showing
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def text(self, digits: int = 3) -> str:
        if self.n == 0:
            return ""
        if self.n == 1 or math.isnan(self.lo):
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def t_interval(values: Sequence[float | None], level: float = LEVEL) -> Interval:
    """Mean and two-sided ``level`` t-interval of the finite values (None and NaN left out)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(xs) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    from scipy.stats import t

    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)
