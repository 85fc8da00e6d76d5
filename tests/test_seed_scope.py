"""run.seed_scope: "model" (the run seed varies initialisation and data order) or "all" (also the trigger set
and the owner/attacker/test split, derived from the run seed and recorded in the log)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import quick_config
from wmstudio.config_io import load_config
from wmstudio.errors import ConfigError


def test_scope_all_derives_the_trigger_and_split_seeds_from_the_run_seed() -> None:
    cfg = load_config(data=quick_config(run={"seed": 3, "seed_scope": "all"}, trigger={"seed": 9},
                                        data={"split_seed": 9, "flip": False}))
    assert (cfg.run.seed, cfg.trigger.seed, cfg.data.split_seed) == (3, 4, 3)  # the values set are replaced
    model = load_config(data=quick_config(run={"seed": 3}, trigger={"seed": 9}))
    assert (model.run.seed_scope, model.trigger.seed, model.data.split_seed) == ("model", 9, 0)  # default: as set
    zero = load_config(data=quick_config(run={"seed_scope": "all"}))
    assert (zero.trigger.seed, zero.data.split_seed) == (1, 0)  # run seed 0: the defaults
    with pytest.raises(ConfigError, match="run.seed_scope: expected one of model, all"):
        load_config(data={"run": {"seed_scope": "everything"}})


def _log(tmp_path, seed: int, scope: str):
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog_reader import RunLogReader

    out = tmp_path / f"{scope}{seed}.h5"
    cfg = load_config(data=quick_config(run={"seed": seed, "seed_scope": scope, "threads": 1}, embed={"epochs": 0},
                                        trigger={"size": 20}, data={"test_size": 200, "flip": False}))
    assert run_experiment(cfg, out, stages=["embed"]).status == "finished"
    return RunLogReader(out)


def test_two_run_seeds_under_all_give_different_trigger_sets_and_splits_recorded_in_the_log(tmp_path) -> None:
    a, b = _log(tmp_path, 0, "all"), _log(tmp_path, 5, "all")
    ta, tb = a.trigger(), b.trigger()
    assert (ta["seed"], tb["seed"]) == (1, 6)  # the trigger set actually built, as the log records it
    assert not np.array_equal(ta["images"], tb["images"])
    sa, sb = a.splits(), b.splits()
    for part in ("owner", "attacker", "test"):  # a test subset (data.test_size) is drawn by the split seed too
        assert not np.array_equal(sa[part], sb[part]), part
    assert (a.data_info()["split_seed"], b.data_info()["split_seed"]) == (0, 5)
    cb = json.loads(b.config_json)
    assert cb["run"]["seed_scope"] == "all" and cb["trigger"]["seed"] == 6 and cb["data"]["split_seed"] == 5
    m = _log(tmp_path, 5, "model")  # today's behaviour: the same trigger set and split as run seed 0
    assert m.trigger()["seed"] == 1 and np.array_equal(m.trigger()["images"], ta["images"])
    assert np.array_equal(m.splits()["owner"], sa["owner"])


def test_sweep_over_run_seeds_under_all_and_a_derived_axis_refused() -> None:
    from wmstudio.sweep import expand

    base = quick_config(run={"seed_scope": "all"})
    spec = expand("x", base, {"run.seed": [0, 1, 2]})
    cfgs = [load_config(data=r.config) for r in spec.runs]
    assert [(c.trigger.seed, c.data.split_seed) for c in cfgs] == [(1, 0), (2, 1), (3, 2)]
    assert len({r.embed_id for r in spec.runs}) == 3
    with pytest.raises(ConfigError, match=r"axes.trigger.seed: derived from run.seed"):
        expand("x", base, {"trigger.seed": [1, 2]})
    with pytest.raises(ConfigError, match=r"axes.seeds.data.split_seed: derived"):
        expand("x", base, {"seeds": [{"data.split_seed": 1}, {"data.split_seed": 2}]})
    assert len(expand("x", quick_config(), {"trigger.seed": [1, 2]}).runs) == 2  # scope "model": a free axis


def test_null_models_keep_the_suspects_trigger_seed_under_scope_all() -> None:
    from wmstudio.null_models import _null_config_data

    cfg = load_config(data=_null_config_data(quick_config(run={"seed": 4, "seed_scope": "all"}), 2, 4))
    assert cfg.run.seed == 1006 and (cfg.trigger.seed, cfg.data.split_seed) == (5, 4)
