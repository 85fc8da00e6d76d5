"""Options the realistic comparison needs: the attacker's subset drawn per seed, certified robust passes
every N steps, and bf16 training steps."""

from __future__ import annotations

import numpy as np
import pytest

from wmstudio.config_io import load_config
from wmstudio.control import RunControl
from wmstudio.resources import example_config
from wmstudio.runlog_reader import RunLogReader
from wmstudio.stages.finetune import subset_indices


def test_the_attackers_subset_follows_its_seed() -> None:
    a, b, again = subset_indices(15000, 10000, 1), subset_indices(15000, 10000, 2), subset_indices(15000, 10000, 1)
    assert len(a) == 10000 and len(np.unique(a)) == 10000 and a.max() < 15000
    assert np.array_equal(a, again) and not np.array_equal(a, b)
    assert load_config(None, []).finetune.data_seed == -1  # default: data.split_seed, as before


def _run(tmp_path, overrides: list[str]):  # noqa: ANN001, ANN202 - (log path, session)
    import wmstudio.pipeline as pipeline

    cfg = load_config(example_config("demo"), ["run.threads=2", "finetune.enabled=false", "restore.enabled=false",
                                               *overrides])
    captured = {}
    original = pipeline.prepare_session
    pipeline.prepare_session = lambda *a, **k: captured.setdefault("s", original(*a, **k))
    try:
        pipeline.run_experiment(cfg, tmp_path / "m.h5", control=RunControl())
    finally:
        pipeline.prepare_session = original
    return tmp_path / "m.h5", captured["s"]


def test_certified_runs_a_robust_pass_every_n_steps(tmp_path) -> None:
    log, s = _run(tmp_path, ["embed.method='certified'", "embed.epochs=6", "embed.cert_warmup_epochs=5",
                             "embed.cert_draws=2", "embed.cert_levels=3", "embed.cert_every_steps=4"])
    spe = int(RunLogReader(log).stage("embed").train["global_step"].size / 6)
    assert spe >= 4
    assert s.method_state.robust_passes == 1 + spe // 4  # the epoch's start, then every 4th step


def test_bf16_training_steps_keep_fp32_weights_and_evaluations(tmp_path) -> None:
    log, s = _run(tmp_path, ["run.precision='bf16'", "embed.epochs=3"])
    rec = RunLogReader(log).stage("embed")
    assert all(p.dtype.is_floating_point and p.dtype == __import__("torch").float32 for p in s.model.parameters())
    assert np.isfinite(rec.train["loss"]).all() and rec.final("test_acc") > 0.3
    assert RunLogReader(log).config_json.count('"precision": "bf16"') == 1


def test_precision_is_a_choice() -> None:
    from wmstudio.errors import ConfigError

    with pytest.raises(ConfigError, match="run.precision"):
        load_config(None, ["run.precision='fp16'"])
