"""The null distribution file (format ``wmstudio-null``): trigger accuracies of models that never saw
the watermark, and the empirical p-value and threshold they give. Written by ``wmstudio null-models``
(wmstudio/null_models.py), read by ``wmstudio verify --null`` (wmstudio/verify.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from wmstudio.errors import RunLogError
from wmstudio.h5safe import Rule, check_file

FORMAT = "wmstudio-null"
VERSION = 1
MAX_MODELS = 1_000_000
# the file's schema, checked (with external storage, links and sizes) before anything is read
NULL_RULES = (Rule(r"/(trigger_acc|test_acc)", "f", (1,), (MAX_MODELS,), what="float64 (K,)"),
              Rule(r"/(correct|seed)", "iu", (1,), (MAX_MODELS,), what="int64 (K,)"),
              Rule(r"/source", "T", (1,), (MAX_MODELS,), what="strings (K,)"))


def _check_values(p: Path, nd: NullDistribution) -> None:
    """Counts and ranges: K of each column, 1 <= n_triggers, 2 <= num_classes, 0 <= correct <= n_triggers."""
    k = nd.count
    if not 1 <= nd.n_triggers <= 10**6 or not 2 <= nd.num_classes <= 10**6:
        raise RunLogError(f"{p}: n_triggers {nd.n_triggers} and num_classes {nd.num_classes}: expected "
                          "1 to 1000000 triggers and 2 to 1000000 classes")
    if len(nd.trigger_acc) != k or (len(nd.test_acc) not in (0, k)) or (len(nd.seed) not in (0, k)) \
            or (len(nd.source) not in (0, k)):
        raise RunLogError(f"{p}: columns of different lengths (correct: {k}, trigger_acc: {len(nd.trigger_acc)}, "
                          f"test_acc: {len(nd.test_acc)}, seed: {len(nd.seed)}, source: {len(nd.source)})")
    if nd.correct.min() < 0 or nd.correct.max() > nd.n_triggers:
        raise RunLogError(f"{p}: correct counts from {nd.correct.min()} to {nd.correct.max()}, expected 0 to "
                          f"{nd.n_triggers} (n_triggers)")
    if not np.all(np.isfinite(nd.trigger_acc)) or nd.trigger_acc.min() < 0 or nd.trigger_acc.max() > 1:
        raise RunLogError(f"{p}: trigger_acc must hold accuracies in [0, 1]")


@dataclass
class NullDistribution:
    trigger_acc: np.ndarray
    correct: np.ndarray
    n_triggers: int
    num_classes: int
    trigger: str = ""
    recipe: str = ""
    config_json: str = ""
    test_acc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    source: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.correct)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the file (an existing one only with ``overwrite``; written aside and renamed, never through
        a link: ``safe_files.atomic_output``)."""
        from wmstudio.runlog import now
        from wmstudio.safe_files import atomic_output

        p = Path(path)
        with atomic_output(p, overwrite) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "version": VERSION, "created": now(), "trigger": self.trigger,
                            "n_triggers": self.n_triggers, "num_classes": self.num_classes, "recipe": self.recipe,
                            "config_json": self.config_json})
            k = self.count
            f["trigger_acc"] = np.asarray(self.trigger_acc, dtype=np.float64)
            f["correct"] = np.asarray(self.correct, dtype=np.int64)
            f["test_acc"] = np.asarray(self.test_acc if len(self.test_acc) == k else np.full(k, np.nan), np.float64)
            f["seed"] = np.asarray(self.seed if len(self.seed) == k else np.full(k, -1), np.int64)
            f["source"] = np.asarray([s.encode() for s in (self.source or [""] * k)], dtype=h5py.string_dtype())
        return p

    @staticmethod
    def load(path: str | Path) -> NullDistribution:
        p = Path(path)
        if not p.is_file():
            raise RunLogError(f"{p}: null distribution file not found (make one with `wmstudio null-models`)")
        try:
            with h5py.File(p, "r", locking=False) as f:
                check_file(f, p, NULL_RULES)
                if f.attrs.get("format") != FORMAT:
                    raise RunLogError(f"{p}: not a null distribution file (format {f.attrs.get('format')!r}, "
                                      f"expected {FORMAT!r})")
                if int(f.attrs.get("version", 0)) > VERSION:
                    raise RunLogError(f"{p}: null file version {int(f.attrs['version'])} is newer than this "
                                      f"wmstudio reads ({VERSION})")
                nd = NullDistribution(np.asarray(f["trigger_acc"][()], float), np.asarray(f["correct"][()], np.int64),
                                      int(f.attrs["n_triggers"]), int(f.attrs["num_classes"]), str(f.attrs["trigger"]),
                                      str(f.attrs.get("recipe", "")), str(f.attrs.get("config_json", "")),
                                      np.asarray(f["test_acc"][()], float), np.asarray(f["seed"][()], np.int64),
                                      [s.decode() if isinstance(s, bytes) else str(s) for s in f["source"][()]])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise RunLogError(f"{p}: unreadable null distribution file ({str(exc)[:200]})") from None
        if nd.count == 0:
            raise RunLogError(f"{p}: the null distribution holds no models")
        _check_values(p, nd)
        return nd


def empirical_p_value(correct: int, null_correct: Sequence[int] | np.ndarray) -> float:
    """``(1 + #{null >= correct}) / (K + 1)``: the chance that a model that never saw the watermark scores at
    least as high, counting the suspect as one more draw (never 0; the smallest is 1 / (K + 1))."""
    null = np.asarray(null_correct)
    return (1 + int((null >= correct).sum())) / (len(null) + 1)


def empirical_threshold(null_correct: Sequence[int] | np.ndarray, fpr: float) -> int | None:
    """The fewest correct triggers whose empirical p-value is <= ``fpr`` (None: no count reaches it with K nulls)."""
    null = np.sort(np.asarray(null_correct))[::-1]
    allowed = math.floor(fpr * (len(null) + 1) + 1e-9) - 1  # nulls that may score at least as high
    if allowed < 0:
        return None
    return int(null[allowed]) + 1 if allowed < len(null) else 0


