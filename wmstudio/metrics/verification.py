"""Ownership verification: how unlikely is this trigger accuracy for a model that never saw the triggers?

Three exact tests, torch-free:

- :func:`binomial_p_value`, against chance: under the null hypothesis an independent model agrees
  with each trigger label with probability ``p0`` (1/num_classes), independently per trigger; the
  p-value is the binomial upper tail P[X >= k] for k matches out of n. A model that merely leans
  towards the trigger labels passes it, hence the two tests against the model's own control:
- :func:`mcnemar_p_value`, paired: each trigger image against its control image (the same source
  image without the trigger, or a matched clean image), on the discordant pairs;
- :func:`fisher_p_value`, two samples: the trigger hits against the rate at which the model gives
  the trigger labels to clean test images of other classes (logs without control images).
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


def mcnemar_p_value(trigger_only: int, control_only: int) -> float:
    """Exact one-sided McNemar test on paired outcomes: P[X >= trigger_only], X ~ Binomial(b + c, 1/2).

    ``trigger_only`` (b): pairs whose trigger image gets its label and whose control image does not;
    ``control_only`` (c): the reverse. Concordant pairs carry no information about the trigger's
    effect. Under the null hypothesis (the trigger changes nothing) a discordant pair is either kind
    with probability 1/2; 1.0 when there is no discordant pair."""
    if trigger_only < 0 or control_only < 0:
        raise ValueError(f"pair counts must be >= 0, got {trigger_only} and {control_only}")
    n = trigger_only + control_only
    return 1.0 if n == 0 else binomial_p_value(trigger_only, n, 0.5)


def fisher_p_value(k: int, n: int, m: int, big_m: int) -> float:
    """Exact one-sided Fisher test that the rate k/n (trigger hits) exceeds the rate m/M (control hits).

    Conditional on the k + m hits among the n + M draws, the trigger sample's hits are hypergeometric
    under the null hypothesis of one common rate; the p-value is P[X >= k]."""
    if not (0 <= k <= n and 0 <= m <= big_m):
        raise ValueError(f"expected 0 <= k <= n and 0 <= m <= M, got k={k}, n={n}, m={m}, M={big_m}")
    if n == 0:
        return float("nan")
    hits, total = k + m, n + big_m

    def log_comb(a: int, b: int) -> float:
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    hi = min(n, hits)
    if k > hi:
        return 0.0
    log_terms = [log_comb(n, i) + log_comb(big_m, hits - i) - log_comb(total, hits)
                 for i in range(max(k, hits - big_m, 0), hi + 1)]
    if not log_terms:
        return 1.0
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))
