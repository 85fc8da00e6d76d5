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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from wmstudio.errors import ConfigError, RunLogError
from wmstudio.null_distribution import (  # noqa: F401 - the file format, re-exported for existing callers
    FORMAT,
    MAX_MODELS,
    NULL_RULES,
    VERSION,
    NullDistribution,
    empirical_p_value,
    empirical_threshold,
)
from wmstudio.status import Status


def _null_config_data(data: dict, i: int, base_seed: int) -> dict:
    d = copy.deepcopy(data)
    d.setdefault("run", {})["seed"] = base_seed + 1000 + i
    if d["run"].get("seed_scope") == "all":  # the null models vary their own seed, never the suspect's triggers/split
        from wmstudio.config_check import derived_seeds

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
    from wmstudio.config_io import apply_overrides, load_config, read_config_data, to_toml
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog_reader import RunLogReader
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
        if result.status != Status.FINISHED:
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
                          "seeds run.seed + 1000 + i", to_toml(base, comments=False), np.asarray(tests),
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
