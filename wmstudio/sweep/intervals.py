"""Intervals and comparisons for the sweep report: per run (k of n), across seeds, and differences.

**Per run** ("Wilson 95%"). A trigger or test accuracy is k correct of n images (n: the trigger
set's size and the test split's size, both read from the run log). Its interval is Wilson's score
interval: inside [0, 1] by construction, and close to its nominal 95% at every p, also at 0.02 and
0.98 where the Wald interval collapses (coverage checked by simulation in
tests/test_sweep_intervals.py). Restoration's gain within one run (restored - attacked on the same
triggers) gets Newcombe's hybrid score interval ("Newcombe 95%", the MOVER combination of the two
Wilson intervals, inside [-1, 1]); it treats the two evaluations as independent, which makes it
conservative for these paired outcomes (the per-trigger outcomes are not in the records).

**Across seeds** ("logit-t 95%"). The report shows the seed values, their arithmetic mean and a
t-interval computed on the logit scale and mapped back: each seed's proportion becomes the
empirical logit ``logit((k + 0.5) / (n + 1))`` (finite at 0 and 1), the interval is ``mean +-
t(0.975, s - 1) * sd / sqrt(s)`` over the s seeds, and the logistic function maps its ends back, so
it stays inside (0, 1) however few the seeds. The sd is taken as at least the binomial sampling sd
of one run's empirical logit (``1 / sqrt((n + 1) p (1 - p))``, averaged over the seeds), so seeds
that happen to agree exactly (three runs at 100/100) do not give a zero-width interval. The interval
is widened, where needed, to hold the arithmetic mean of the seeds (the empirical logit's shrinkage
towards 1/2 would otherwise leave a mean of exactly 1.0 just outside it). Why not a bootstrap over
seeds: with the 3-10 seeds a sweep affords, a percentile bootstrap never reaches beyond the lowest
and highest seed and has a handful of distinct resamples (10 for 3 seeds), so it covers far less
than 95%; the t quantile keeps the small-sample width and the logit keeps the bounds. With no
variation between seeds beyond the binomial (simulated: 3 and 5 seeds of 100 triggers at p 0.02,
0.5, 0.9, 0.98) it covers p 99-100% of the time: conservative for so few seeds, by the sd floor.

**Differences** lie in [-1, 1]: restoration's gain (restored - attacked trigger accuracy, per run)
and the watermark effect (trigger accuracy - control rate). Across seeds ("atanh-t 95%"): the same
t-interval on the Fisher z scale ``atanh(d)`` (= logit((1 + d) / 2) / 2), d shrunk by n / (n + 1) so
that +-1 stay finite, mapped back by tanh; the sd floor is the binomial sd of the two proportions
the difference is made of. Between two cells (method A - method B) ("MOVER 95%"): the difference of
the two means with Zou and Donner's MOVER interval, built from the two cells' own intervals
(Newcombe's square-and-add); it stays inside [-1, 1] (or [-2, 2] for a difference of differences)
whenever theirs stay inside their ranges.

**Comparisons** ("Welch, Holm"). The p-value of A vs B is Welch's two-sided t-test on the same
transformed scale (logit for proportions, atanh for differences, with the same sd floor); it needs
two seeds a side. Holm's step-down adjustment runs over every comparison a report makes, and a
difference is called only when its Holm-adjusted p-value is below 0.05. A comparison that does not
reach it is reported as "cannot be told apart" with its interval's width: a statement about how
much the seeds can resolve, never that the methods are alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# Axes a report averages over instead of showing: each value is a replicate of the same cell.
# `run.seed` varies initialisation and data order, and with run.seed_scope = "all" also the trigger
# set and the split (see wmstudio.config_check.derived_seeds); `trigger.seed` and `data.split_seed` as
# axes of their own vary those alone.
REPLICATE_AXES = ("run.seed", "trigger.seed", "data.split_seed")
LEVEL = 0.95
ALPHA = 1 - LEVEL

WILSON = "Wilson 95%"
NEWCOMBE = "Newcombe 95%"
LOGIT_T = "logit-t 95%"
ATANH_T = "atanh-t 95%"
MOVER = "MOVER 95%"
T_INTERVAL = "t 95%"
COMPARISON_TEST = "Welch t-test on the logit/atanh scale, Holm-adjusted"


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float
    n: int
    method: str = ""
    values: tuple[float, ...] = field(default=())  # the seed values, in the order given

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def text(self, digits: int = 3) -> str:
        if self.n == 0:
            return ""
        if math.isnan(self.lo):
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"

    def values_text(self, digits: int = 2) -> str:
        return ", ".join(f"{v:.{digits}f}" for v in self.values)


def _finite(values: Sequence[float | None]) -> list[int]:
    return [i for i, v in enumerate(values) if v is not None and math.isfinite(float(v))]


def _t(df: float, level: float = LEVEL) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def _z(level: float = LEVEL) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def t_interval(values: Sequence[float | None], level: float = LEVEL) -> Interval:
    """Mean and Student t-interval of the finite values (None and NaN left out); for unbounded quantities
    (e.g. drift), never for proportions."""
    xs = [float(values[i]) for i in _finite(values)]  # type: ignore[arg-type]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, T_INTERVAL)
    mean = sum(xs) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, T_INTERVAL, tuple(xs))
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _t(n - 1, level) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, T_INTERVAL, tuple(xs))


# ---------------------------------------------------------------- per run

def wilson(k: float, n: int, level: float = LEVEL) -> Interval:
    """Wilson's score interval for k successes of n (k may be a proportion times n, rounded here)."""
    if n <= 0 or not math.isfinite(k):
        return Interval(math.nan, math.nan, math.nan, 0, WILSON)
    k = min(max(round(k), 0), n)
    z = _z(level)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if k == 0 else min(p, max(0.0, centre - half))  # exact ends at 0 and n (no rounding residue)
    hi = 1.0 if k == n else max(p, min(1.0, centre + half))
    return Interval(p, lo, hi, n, WILSON)


def wilson_of(p: float | None, n: int | None, level: float = LEVEL) -> Interval:
    """Wilson's interval of a recorded proportion ``p`` of ``n`` (an empty Interval when either is missing)."""
    if p is None or n is None or not math.isfinite(float(p)) or int(n) <= 0:
        return Interval(math.nan, math.nan, math.nan, 0, WILSON)
    return wilson(float(p) * int(n), int(n), level)


def newcombe(p1: float | None, p2: float | None, n1: int | None, n2: int | None, level: float = LEVEL) -> Interval:
    """Newcombe's hybrid score interval of p1 - p2 (each a proportion of its n): MOVER from two Wilson intervals."""
    a, b = wilson_of(p1, n1, level), wilson_of(p2, n2, level)
    if a.n == 0 or b.n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, NEWCOMBE)
    d = mover(a, b)
    return Interval(d.mean, d.lo, d.hi, min(a.n, b.n), NEWCOMBE)


# ---------------------------------------------------------------- across seeds

def _shrunk(p: float, n: int) -> float:
    """The empirical-logit proportion (k + 0.5) / (n + 1), finite on the logit scale at 0 and 1."""
    return (p * n + 0.5) / (n + 1)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _transformed(values: Sequence[float | None], ns: Sequence[int | None] | None,
                 parts: Sequence[tuple[float | None, float | None]] | None, difference: bool,
                 default_n: int) -> tuple[list[float], list[float], list[float]]:
    """(raw finite values, transformed values, binomial variance floors) of the seeds."""
    raw, z, floor = [], [], []
    for i in _finite(values):
        v = float(values[i])  # type: ignore[arg-type]
        n = int(ns[i]) if ns is not None and ns[i] else default_n
        raw.append(v)
        if not difference:
            q = _shrunk(min(max(v, 0.0), 1.0), n)
            z.append(_logit(q))
            floor.append(1.0 / ((n + 1) * q * (1 - q)))
            continue
        d = min(max(v, -1.0), 1.0) * n / (n + 1)
        z.append(math.atanh(d))
        f = math.nan
        if parts is not None and parts[i][0] is not None and parts[i][1] is not None:
            q1, q2 = _shrunk(float(parts[i][0]), n), _shrunk(float(parts[i][1]), n)  # type: ignore[arg-type]
            f = (q1 * (1 - q1) + q2 * (1 - q2)) / (n + 1) / (1 - d * d) ** 2
        floor.append(f)
    return raw, z, floor


def _spread(z: list[float], floor: list[float]) -> tuple[float, float]:
    """(mean, sd) on the transformed scale, the sd at least the mean binomial floor."""
    s = len(z)
    mean = sum(z) / s
    var = sum((x - mean) ** 2 for x in z) / (s - 1) if s > 1 else 0.0
    known = [f for f in floor if math.isfinite(f)]
    if known:
        var = max(var, sum(known) / len(known))
    return mean, math.sqrt(var)


def seed_interval(values: Sequence[float | None], ns: Sequence[int | None] | None = None,
                  parts: Sequence[tuple[float | None, float | None]] | None = None, difference: bool = False,
                  level: float = LEVEL, default_n: int = 100) -> Interval:
    """Mean of the seeds and their logit-t (proportions) or atanh-t (``difference``: values in [-1, 1]) interval.

    ``ns``: each value's n (trigger set or test split size; None or 0: ``default_n``). ``parts``: for a difference,
    the two proportions it is made of, per value (for the binomial sd floor). None and NaN values are left out;
    one seed gives no interval (NaN bounds)."""
    method = ATANH_T if difference else LOGIT_T
    raw, z, floor = _transformed(values, ns, parts, difference, default_n)
    s = len(raw)
    if s == 0:
        return Interval(math.nan, math.nan, math.nan, 0, method)
    mean = sum(raw) / s
    if s == 1:
        return Interval(mean, math.nan, math.nan, 1, method, tuple(raw))
    centre, sd = _spread(z, floor)
    half = _t(s - 1, level) * sd / math.sqrt(s)
    back = math.tanh if difference else _logistic
    lo, hi = back(centre - half), back(centre + half)
    return Interval(mean, min(lo, mean), max(hi, mean), s, method, tuple(raw))


def mover(a: Interval, b: Interval) -> Interval:
    """The difference a.mean - b.mean with Zou and Donner's MOVER interval from a's and b's intervals."""
    d = a.mean - b.mean
    if a.n == 0 or b.n == 0 or any(math.isnan(x) for x in (a.lo, a.hi, b.lo, b.hi)):
        return Interval(d, math.nan, math.nan, min(a.n, b.n), MOVER)
    lo = d - math.sqrt((a.mean - a.lo) ** 2 + (b.hi - b.mean) ** 2)
    hi = d + math.sqrt((a.hi - a.mean) ** 2 + (b.mean - b.lo) ** 2)
    return Interval(d, lo, hi, min(a.n, b.n), MOVER)


# ---------------------------------------------------------------- comparisons

def welch_p(a: Sequence[float | None], b: Sequence[float | None], ns_a: Sequence[int | None] | None = None,
            ns_b: Sequence[int | None] | None = None, parts_a: Sequence[tuple[float | None, float | None]] | None = None,
            parts_b: Sequence[tuple[float | None, float | None]] | None = None, difference: bool = False,
            default_n: int = 100) -> float:
    """Two-sided Welch t-test p-value of a vs b on the logit (atanh for differences) scale, with the same sd floor as
    ``seed_interval``; NaN when a side has fewer than two seeds."""
    _, za, fa = _transformed(a, ns_a, parts_a, difference, default_n)
    _, zb, fb = _transformed(b, ns_b, parts_b, difference, default_n)
    if len(za) < 2 or len(zb) < 2:
        return math.nan
    (ma, sa), (mb, sb) = _spread(za, fa), _spread(zb, fb)
    va, vb = sa * sa / len(za), sb * sb / len(zb)
    if va + vb == 0:
        return 1.0 if ma == mb else 0.0
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(za) - 1) + vb * vb / (len(zb) - 1))
    from scipy.stats import t as student

    return float(2 * student.sf(abs(t), df))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (NaN entries are not in the family and stay NaN)."""
    idx = sorted((i for i, p in enumerate(p_values) if not math.isnan(p)), key=lambda i: p_values[i])
    m = len(idx)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out
