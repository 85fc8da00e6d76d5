"""Null models: how well do models that never saw the watermark score on its trigger set?

``wmstudio null-models CONFIG --count K`` trains K models with the config's recipe and no watermark
(the embed stage with ``trigger_fraction = 0`` and plain training, seeds ``run.seed + 1000 + i``; no
attack, no restoration) and measures each one's accuracy on the trigger set: the one the config
builds, or with ``--trigger LOG`` the one stored in that run log (required for adversarial
triggers, which depend on the owner's model). ``--checkpoints`` measures given models instead.

The distribution is stored in a small HDF5 file (format ``wmstudio-null``, version 1):

```
attrs:    format, version, created, trigger (what the trigger set is), n_triggers, num_classes,
          recipe (how the models were obtained), config_json (the config, "" for checkpoints)
datasets: trigger_acc (K float64), correct (K int64), test_acc (K float64, NaN when not measured),
          seed (K int64, -1 for checkpoints), source (K strings: run log or checkpoint path)
```

``wmstudio verify ... --null FILE`` then reports the empirical p-value of the suspect's trigger
accuracy against it (``empirical_p_value``) beside the binomial one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from wmstudio.errors import ConfigError, RunLogError
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


def _null_config_data(data: dict, i: int, base_seed: int) -> dict:
    d = copy.deepcopy(data)
    d.setdefault("run", {})["seed"] = base_seed + 1000 + i
    if d["run"].get("seed_scope") == "all":  # the null models vary their own seed, never the suspect's triggers/split
        from wmstudio.config import derived_seeds

        d["run"]["seed_scope"] = "model"
        d.setdefault("trigger", {})["seed"], d.setdefault("data", {})["split_seed"] = derived_seeds(base_seed)
    emb = d.setdefault("embed", {})
    emb.update(method="plain", trigger_fraction=0.0, enabled=True)
    for name in ("finetune", "extract", "restore"):
        d.setdefault(name, {})["enabled"] = False
    d.setdefault("attack", {})["kind"] = "finetune"
    return d


def train_null_models(config: str | Path, count: int, out: str | Path, trigger_log: str | Path | None = None,
                      models_dir: str | Path | None = None, overrides: list[str] | None = None,
                      progress: Callable[[str], None] = lambda _t: None, overwrite: bool = False) -> NullDistribution:
    """Train ``count`` unwatermarked models with ``config``'s recipe; store and return their trigger accuracies.

    ``out`` and the null models' run logs are refused up front, before any training, when they exist
    and ``overwrite`` is not set."""
    from wmstudio.config import apply_overrides, load_config, read_config_data
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog import RunLogReader
    from wmstudio.safe_files import check_target, check_targets

    if count < 1:
        raise ConfigError("--count", f"expected at least 1 null model, got {count}")
    raw = apply_overrides(read_config_data(config), overrides or [])
    base = load_config(data=copy.deepcopy(raw))
    if base.trigger.scheme == "adversarial" and not trigger_log:
        raise ConfigError("--trigger", "adversarial triggers are made against the owner's model: give the run log "
                                       "that embedded them (--trigger RUN.h5)")
    check_target(out, overwrite)
    folder = Path(models_dir) if models_dir else Path(out).with_suffix("").with_name(Path(out).stem + "_models")
    check_targets([folder / f"null_{i:03d}.h5" for i in range(count)], overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    accs, correct, tests, seeds, sources = [], [], [], [], []
    n = classes = 0
    label = ""
    for i in range(count):
        cfg = load_config(data=_null_config_data(raw, i, base.run.seed))
        log = folder / f"null_{i:03d}.h5"
        result = run_experiment(cfg, log, stages=["embed"], trigger_from=trigger_log, overwrite=overwrite)
        if result.status != "finished":
            raise RunLogError(f"{log}: null model {i} did not finish ({result.status}: {result.message})")
        r = RunLogReader(log)
        ts = r.trigger()
        n, classes = len(ts["labels"]), int(r.data_info()["num_classes"])
        label = f"{trigger_log} (stored trigger set)" if trigger_log else f"{cfg.trigger.scheme} x{n}, seed {cfg.trigger.seed} (built from {config})"
        acc = r.stage("embed").final("trigger_acc")
        accs.append(acc)
        correct.append(int(round(acc * n)))
        tests.append(r.stage("embed").final("test_acc"))
        seeds.append(cfg.run.seed)
        sources.append(str(log))
        progress(f"null model {i + 1}/{count}: trigger acc {acc:.3f}, test acc {tests[-1]:.3f}")
    nd = NullDistribution(np.asarray(accs), np.asarray(correct), n, classes, label,
                          "the config's recipe without the watermark (embed: plain, trigger_fraction 0), "
                          "seeds run.seed + 1000 + i", base.to_toml(comments=False), np.asarray(tests),
                          np.asarray(seeds), sources)
    nd.save(out, overwrite)
    return nd


def measure_checkpoints(checkpoints: Sequence[str], trigger: str, out: str | Path, config: str | None = None,
                        progress: Callable[[str], None] = lambda _t: None, trust_code: bool = False,
                        overwrite: bool = False) -> NullDistribution:
    """The trigger accuracy of each given (unwatermarked) model, via ``wmstudio verify``'s loading
    (``trust_code`` as there). A model that cannot be evaluated (non-finite weights, a degenerate
    normalisation) is refused: it would enter the distribution as 0 correct."""
    from wmstudio.safe_files import check_target
    from wmstudio.verify import verify

    check_target(out, overwrite)  # before measuring

    results = []
    for path in checkpoints:
        v = verify(path, trigger, 0.5, config=config, trust_code=trust_code)
        if not v.measured:
            raise ConfigError("--checkpoints", f"{path}: cannot be measured as a null model: {v.unverifiable}")
        results.append(v)
        progress(f"{path}: trigger acc {v.trigger_acc:.3f}")
    if not results:
        raise ConfigError("--checkpoints", "no checkpoints given")
    nd = NullDistribution(np.asarray([v.trigger_acc for v in results]), np.asarray([v.correct for v in results]),
                          results[0].n, results[0].num_classes, results[0].trigger, "given checkpoints", "",
                          np.asarray([v.test_acc if v.test_acc is not None else np.nan for v in results]),
                          np.full(len(results), -1), [str(c) for c in checkpoints])
    nd.save(out, overwrite)
    return nd
