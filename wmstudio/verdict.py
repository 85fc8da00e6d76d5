"""The answer of an ownership verification (``wmstudio verify``): each test's outcome, the decision at the
false-positive rate, and its text for the CLI and the app. ``wmstudio.verify`` measures; this holds and words."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from wmstudio.metrics import binomial_p_value


@dataclass
class Verification:
    model: str
    architecture: str
    trigger: str
    n: int
    correct: int
    num_classes: int
    p_value: float  # the chance test's
    fpr: float
    needed: int  # the fewest correct triggers whose p-value is <= fpr (n + 1: none)
    test_acc: float | None
    test_note: str
    notes: list[str] = field(default_factory=list)
    null_accs: list[float] | None = None  # the null models' trigger accuracies (with --null)
    null_p_value: float | None = None
    null_needed: int | None = None  # the fewest correct triggers the null distribution accepts (None: unreachable)
    null_file: str = ""
    control: str = ""  # what the control test compared with ("" when none could be run)
    control_test: str = ""  # the control test and its counts, in words
    control_n: int = 0  # control outcomes (pairs, or clean test images weighted per trigger label)
    control_hits: int = 0  # of which the model gave the trigger label
    control_p_value: float | None = None
    unverifiable: str = ""  # why the model cannot be verified ("" when it can)
    measured: bool = True  # the model was evaluated (False: refused before, for its weights or normalisation)

    @property
    def null_verified(self) -> bool | None:
        return None if self.null_p_value is None else self.null_p_value <= self.fpr

    @property
    def threshold_acc(self) -> float | None:
        """The trigger accuracy the empirical decision needs (None without nulls or when unreachable)."""
        return None if self.null_needed is None else self.null_needed / self.n

    @property
    def trigger_acc(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def control_rate(self) -> float | None:
        return self.control_hits / self.control_n if self.control_n else None

    @property
    def chance_verified(self) -> bool:
        return self.p_value <= self.fpr

    @property
    def control_verified(self) -> bool:
        return self.control_p_value is not None and self.control_p_value <= self.fpr

    def failed_tests(self) -> list[str]:
        """The tests run that do not reject their null hypothesis at the false-positive rate."""
        failed = [] if self.chance_verified else ["chance"]
        failed += [] if self.control_verified else ["control"]
        return failed + (["null models"] if self.null_verified is False else [])

    @property
    def verified(self) -> bool:
        """Present only when the model can be verified and every test run agrees at the false-positive rate."""
        return not self.unverifiable and not self.failed_tests()

    def headline(self) -> str:
        if self.unverifiable:
            return "CANNOT BE VERIFIED"
        return "WATERMARK PRESENT" if self.verified else "not shown"

    def text(self) -> str:
        def verdict(p: float | None) -> str:
            return "" if p is None else (f": p <= {self.fpr:g}" if p <= self.fpr else f": p > {self.fpr:g}, not shown")

        need = f"alone needs >= {self.needed}/{self.n} correct" if self.needed <= self.n else "unreachable with this many triggers"
        lines = [f"model        {self.model} ({self.architecture})",
                 f"trigger      {self.trigger}",
                 f"trigger acc  {self.trigger_acc:.3f} ({self.correct}/{self.n})"]
        if not self.measured:
            lines[-1] = "trigger acc  not measured (see the decision)"
        if self.control_rate is not None:
            lines += [f"control      {self.control_rate:.3f} ({self.control_hits}/{self.control_n}): {self.control}",
                      f"effect       {self.trigger_acc - self.control_rate:+.3f} (trigger acc - control rate)"]
        lines.append("p-value      not measured" if not self.measured else f"p-value      {self.p_value:.3g}  (binomial upper tail, chance 1/{self.num_classes} per trigger; "
                     f"{need}){verdict(self.p_value)}")
        if self.control_p_value is not None:
            lines.append(f"control p    {self.control_p_value:.3g}  ({self.control_test}){verdict(self.control_p_value)}")
        else:
            lines.append(f"control p    not measured: {self.control or 'no control'}")
        if self.null_accs is not None and self.null_p_value is not None:
            k = len(self.null_accs)
            nneed = (f"needs >= {self.null_needed}/{self.n} correct" if self.null_needed is not None
                     else f"unreachable: {k} null models give p >= {1 / (k + 1):.3g}; need >= {math.ceil(1 / self.fpr) - 1}")
            lines += [f"null models  {k} from {self.null_file}: trigger acc mean {float(np.mean(self.null_accs)):.3f}, "
                      f"max {max(self.null_accs):.3f}",
                      f"empirical p  {self.null_p_value:.3g}  ((1 + nulls scoring >= {self.correct}/{self.n}) / ({k} + 1); "
                      f"{nneed}){verdict(self.null_p_value)}"]
        if self.unverifiable:
            decision = f"CANNOT BE VERIFIED: {self.unverifiable}"
        elif self.verified:
            decision = f"WATERMARK PRESENT at false-positive rate {self.fpr:g} (every test agrees)"
        else:
            decision = (f"not shown (no evidence of the watermark) at false-positive rate {self.fpr:g}: "
                        f"the {', '.join(self.failed_tests())} test{'s' if len(self.failed_tests()) > 1 else ''} "
                        "did not reject")
        lines.append(f"decision     {decision}")
        lines.append(f"test acc     {self.test_acc:.3f} ({self.test_note})" if self.test_acc is not None
                     else f"test acc     not measured: {self.test_note}")
        return "\n".join(lines + [f"note         {n}" for n in self.notes])


def needed_correct(n: int, num_classes: int, fpr: float) -> int:
    """The fewest matches out of n whose binomial p-value is at most ``fpr`` (n + 1 when none is)."""
    lo, hi = 0, n + 1
    while lo < hi:  # the p-value falls as k grows
        mid = (lo + hi) // 2
        if binomial_p_value(mid, n, 1.0 / num_classes) <= fpr:
            hi = mid
        else:
            lo = mid + 1
    return lo


