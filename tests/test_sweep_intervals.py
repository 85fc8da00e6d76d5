"""Seeds in sweeps: seed axes aggregated into means and intervals that stay in range per cell (logit-t for
accuracies, atanh-t for differences), Wilson intervals per run (coverage checked by simulation), Holm-adjusted
comparisons between cells, collapsed runs excluded with their count, and the attack family (`attack.kind`) as an
axis."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wmstudio.config_io import load_config, read_config_data
from wmstudio.resources import example_config
from wmstudio.sweep import expand, write_report
from wmstudio.sweep import report as report_module
from wmstudio.sweep.intervals import (
    ATANH_T,
    LOGIT_T,
    holm,
    mover,
    newcombe,
    seed_interval,
    t_interval,
    wilson,
)
from wmstudio.sweep.records import write_json
from wmstudio.sweep.tasks import run_task


def test_t_interval_matches_the_textbook_formula() -> None:
    iv = t_interval([0.2, 0.4, 0.6])
    assert iv.mean == pytest.approx(0.4) and iv.n == 3
    assert iv.half_width == pytest.approx(4.302653 * 0.2 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027
    assert math.isnan(t_interval([0.5]).lo) and t_interval([0.5]).text() == "0.500 (n=1)"
    assert t_interval([0.3, 0.3, None, float("nan")]).half_width == 0.0
    assert t_interval([]).n == 0


COVERAGE_TOLERANCE = 0.035  # Wilson's coverage oscillates with n and p; at n >= 50 it stays within 0.035 of 95%


@pytest.mark.parametrize("n", [50, 100, 1000])
def test_wilson_coverage_by_simulation_is_nominal_within_the_tolerance(n: int) -> None:
    rng = np.random.default_rng(n)
    for p in (0.02, 0.1, 0.5, 0.9, 0.98):
        draws = rng.binomial(n, p, size=20_000)
        bounds = {k: wilson(int(k), n) for k in np.unique(draws)}
        assert all(0.0 <= b.lo <= b.mean <= b.hi <= 1.0 for b in bounds.values())
        covered = np.mean([bounds[k].lo <= p <= bounds[k].hi for k in draws])
        assert abs(covered - 0.95) <= COVERAGE_TOLERANCE, (n, p, covered)


def test_wilson_and_newcombe_known_values() -> None:
    w = wilson(98, 100)
    assert (w.mean, round(w.lo, 4), round(w.hi, 4)) == (0.98, 0.9300, 0.9945)
    assert wilson(0, 100).lo == 0.0 and wilson(0, 100).hi == pytest.approx(0.0370, abs=1e-4)
    d = newcombe(1.0, 0.0, 100, 100)  # the largest possible gain: inside [-1, 1]
    assert d.mean == 1.0 and 0.9 < d.lo < d.hi <= 1.0


def test_across_seed_intervals_stay_inside_their_ranges() -> None:
    """The t-interval of the issue (0.98 [0.89, 1.07]) and prune 80% ([-0.17, 1.66]) left [0, 1]; these cannot."""
    assert t_interval([1.0, 1.0, 0.94]).hi > 1.0  # the old interval, for contrast
    for values in ([1.0, 1.0, 0.94], [0.02, 1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.9, 0.95]):
        iv = seed_interval(values, [100] * len(values))
        assert 0.0 <= iv.lo <= iv.mean <= iv.hi <= 1.0 and iv.method == LOGIT_T, (values, iv)
        assert iv.values == tuple(values)
    assert seed_interval([1.0, 1.0, 1.0], [100] * 3).width > 0  # seeds that agree still have binomial noise
    rng = np.random.default_rng(7)
    for p in (0.02, 0.98):
        for _ in range(300):
            iv = seed_interval(list(rng.binomial(100, p, size=3) / 100), [100] * 3)
            assert 0.0 <= iv.lo <= iv.mean <= iv.hi <= 1.0
    for gains in ([1.0, -0.2, 0.9], [-1.0, -1.0, -0.98], [0.0, 0.0, 0.0]):
        iv = seed_interval(gains, [100] * 3, parts=[(max(g, 0.0), max(-g, 0.0)) for g in gains], difference=True)
        assert -1.0 <= iv.lo <= iv.mean <= iv.hi <= 1.0 and iv.method == ATANH_T, (gains, iv)
    assert seed_interval([0.0, 0.0, 0.0], [100] * 3, parts=[(1.0, 1.0)] * 3, difference=True).width > 0
    a, b = seed_interval([0.98, 1.0, 0.99], [100] * 3), seed_interval([0.05, 0.0, 0.02], [100] * 3)
    d = mover(a, b)
    assert -1.0 <= d.lo < d.mean < d.hi <= 1.0 and d.mean == pytest.approx(a.mean - b.mean)


def test_holm_adjusts_a_known_example_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> kept at 0.06 (monotone)
    adjusted = holm(p)
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(adjusted[4])


def test_the_reports_holm_step_on_a_known_example(tmp_path, monkeypatch) -> None:
    """Three attacks x 3 seeds: 3 pairs x 3 compared metrics (no controls recorded) = 9 comparisons, their Welch
    p-values fixed here, their Holm-adjusted values computed by hand."""
    runs = [({"attack.kind": k, "run.seed": s}, (a + 0.01 * s, 0.9)) for k, a in (("prune", 0.2), ("noise", 0.5),
                                                                                   ("quantize", 0.8)) for s in (0, 1, 2)]
    _fake_sweep(tmp_path, runs, axes={"attack.kind": ["prune", "noise", "quantize"], "run.seed": [0, 1, 2]})
    raw = iter([0.001, 0.02, 0.04, 0.3, 0.004, 0.01, 0.5, 0.03, 0.012])
    monkeypatch.setattr(report_module, "welch_p", lambda *a, **k: next(raw))
    rep = write_report(tmp_path)
    comps = rep["comparisons"]
    # sorted: .001x9=.009, .004x8=.032, .01x7=.07, .012x6=.072, .02x5=.1, .03x4=.12, .04x3=.12, .3x2=.6, .5x1 -> .6
    assert [c["p_holm"] for c in comps] == pytest.approx([0.009, 0.1, 0.12, 0.6, 0.032, 0.07, 0.6, 0.12, 0.072])
    assert [c["verdict"].split(":")[0] for c in comps].count("differ") == 2
    assert all(c["drift_a"] == pytest.approx(0.1) for c in comps)  # the attack's drift beside every comparison
    md = (tmp_path / "report.md").read_text()
    assert "9 comparisons" in md and "Holm" in md and "2 differ after the correction" in md
    assert "cannot be told apart at these seed counts: their intervals are" in md
    header = (tmp_path / "comparisons.csv").read_text().splitlines()[0]
    assert "mover95_lo" in header and "p_holm" in header and "drift_rel_a" in header


def test_the_reports_comparisons_use_welch_on_the_logit_scale(tmp_path) -> None:
    runs = [({"attack.kind": "prune", "run.seed": s}, (a, 0.9)) for s, a in ((0, 0.1), (1, 0.12), (2, 0.08))]
    runs += [({"attack.kind": "noise", "run.seed": s}, (a, 0.9)) for s, a in ((0, 0.95), (1, 0.97), (2, 0.93))]
    _fake_sweep(tmp_path, runs)
    comps = write_report(tmp_path)["comparisons"]
    attacked = next(c for c in comps if c["metric"] == "attacked.trigger_acc")
    assert attacked["a"] == "prune" and attacked["p"] < 1e-3 and attacked["verdict"] == "differ: noise higher"
    assert attacked["diff"].lo > -1.0 - 1e-12 and attacked["diff"].hi < 1.0 + 1e-12


def test_a_comparison_run_in_two_sweep_folders_is_reported_as_one(tmp_path, capsys) -> None:
    """Part 1 swept one attack, part 2 the other (same axes): one report, one cell each; other axes are refused."""
    _fake_sweep(tmp_path / "p1", [({"attack.kind": "prune", "run.seed": s}, (0.2 * s, 1.0)) for s in (0, 1, 2)], "a")
    _fake_sweep(tmp_path / "p2", [({"attack.kind": "noise", "run.seed": s}, (0.9, 0.95)) for s in (0, 1, 2)], "b")
    rep = write_report(tmp_path / "all", sources=[tmp_path / "p1", tmp_path / "p2"])
    assert len(rep["rows"]) == 6 and {c["attack.kind"]: c["n"] for c in rep["cells"]} == {"prune": 3, "noise": 3}
    md = (tmp_path / "all" / "report.md").read_text()
    assert "fake a + fake b" in md and "from 2 sweep folders" in md and (tmp_path / "all" / "cells.csv").is_file()
    assert not (tmp_path / "p1" / "report.md").exists()  # the parts are only read
    from wmstudio.cli import main

    assert main(["report", str(tmp_path / "p1"), str(tmp_path / "p2")]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "p1"), str(tmp_path / "p2"), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "cells.csv").read_text() == (tmp_path / "all" / "cells.csv").read_text()
    _fake_sweep(tmp_path / "p3", [({"finetune.lr": 0.1}, (0.5, 0.5))], "c", axes={"finetune.lr": [0.1]})
    from wmstudio.errors import RunLogError

    with pytest.raises(RunLogError, match=r"p3: its axes \(finetune.lr\) differ"):
        write_report(tmp_path / "bad", sources=[tmp_path / "p1", tmp_path / "p3"])


def test_attack_kind_and_seed_axes_expand_with_shared_embeds() -> None:
    base = read_config_data(example_config("demo"))
    spec = expand("x", base, {"attack.kind": ["finetune", "prune", "quantize"], "run.seed": [0, 1]})
    assert len(spec.runs) == 6 and not any(r.error for r in spec.runs)
    assert len({r.embed_id for r in spec.runs}) == 2  # one watermarked model per seed, shared by the attacks
    assert {r.config["attack"]["kind"] for r in spec.runs} == {"finetune", "prune", "quantize"}


def _fake_sweep(folder, runs, prefix: str = "r", axes: dict | None = None, extra: dict | None = None,
                base: dict | None = None) -> None:
    """A sweep folder as the runner leaves it: sweep.json and one finished record per run (records written before
    controls and counts were recorded, unless ``extra``: run index -> more finals)."""
    axes = axes or {"attack.kind": ["prune", "noise"], "run.seed": [0, 1, 2]}
    write_json(folder / "sweep.json", {"name": f"fake {prefix}", "axes": axes, "base": base or {},
                                       "runs": [{"run_id": f"{prefix}{i}", "values": v} for i, (v, _) in enumerate(runs)]})
    for i, (values, (attacked, restored)) in enumerate(runs):
        write_json(folder / "runs" / f"{prefix}{i}.json", {
            "run_id": f"{prefix}{i}", "values": values, "status": "finished", "seconds": 1.0,
            "finals": {"attacked.trigger_acc": attacked, "restore.trigger_acc": restored, "attacked.test_acc": 0.9,
                       "restore.test_acc": 0.95, "attacked.drift_rel": 0.1, "watermarked.trigger_acc": 1.0,
                       **(extra or {}).get(i, {})}})


def test_report_gives_each_cell_its_seeds_mean_interval_and_gain_interval(tmp_path) -> None:
    runs = [({"attack.kind": "prune", "run.seed": s}, (a, r)) for s, a, r in [(0, 0.2, 0.5), (1, 0.4, 0.6), (2, 0.6, 1.0)]]
    runs += [({"attack.kind": "noise", "run.seed": s}, (0.9, 0.95)) for s in (0, 1, 2)]
    _fake_sweep(tmp_path, runs)
    rep = write_report(tmp_path)
    prune = next(c for c in rep["cells"] if c["attack.kind"] == "prune")
    assert prune["n"] == 3
    assert prune["attacked.trigger_acc"].mean == pytest.approx(0.4)
    assert prune["attacked.trigger_acc"] == seed_interval([0.2, 0.4, 0.6], [100] * 3)  # n unknown: 100
    assert prune["attacked.trigger_acc"].values == (0.2, 0.4, 0.6) and prune["seeds"] == ("0", "1", "2")
    assert prune["gain"].mean == pytest.approx(0.3)  # per-run gains 0.3, 0.2, 0.4
    gain = seed_interval([0.3, 0.2, 0.4], [100] * 3, parts=[(0.5, 0.2), (0.6, 0.4), (1.0, 0.6)], difference=True)
    assert (prune["gain"].lo, prune["gain"].hi) == pytest.approx((gain.lo, gain.hi))
    assert prune["attacked.drift_rel"].mean == pytest.approx(0.1)
    noise = next(c for c in rep["cells"] if c["attack.kind"] == "noise")
    assert noise["gain"].mean == pytest.approx(0.05) and noise["gain"].width > 0  # binomial floor: never zero width
    md = (tmp_path / "report.md").read_text()
    assert "## Per cell over seeds" in md and "| prune | 3 (0, 1, 2) | 0 | 0.400 [" in md and "(0.20, 0.40, 0.60)" in md
    assert f"trigger acc (attacked) [{LOGIT_T}]" in md and f"restoration gain [{ATANH_T}]" in md
    assert "effect (attacked)" in md and "not recorded" in md  # records older than the controls
    header = (tmp_path / "cells.csv").read_text().splitlines()[0]
    assert header.startswith("attack.kind,seeds,seed_values,excluded_runs,attacked.trigger_acc.mean,"
                             "attacked.trigger_acc.logit_t95_lo,attacked.trigger_acc.logit_t95_hi,"
                             "attacked.trigger_acc.values")
    assert "gain.atanh_t95_lo" in header and "attacked.trigger_effect.atanh_t95_lo" in header
    assert ",not recorded," in (tmp_path / "cells.csv").read_text().splitlines()[1]
    names = {p.rsplit("/", 1)[-1] for p in rep["figures"]}
    assert {"persistence_matrix.png", "seed_intervals.png", "drift_vs_restored.png"} <= names


def test_a_sweep_attack_task_records_the_attacked_and_watermarked_metrics(demo_run, tmp_path) -> None:
    data = read_config_data(example_config("demo"))
    data.setdefault("attack", {})["kind"] = "quantize"
    data["attack"]["bits"] = 4
    data["restore"]["epochs"] = 1
    plan = {"run_id": "q", "values": {"attack.kind": "quantize"}, "config": json.loads(json.dumps(data))}
    messages = list(run_task("attack", plan, 1, {}, embed=demo_run.read_bytes()))  # the task streams; the last is its record
    rec = messages[-1]["record"]
    assert rec["status"] == "finished", rec.get("error")
    f = rec["finals"]
    assert f["watermarked.trigger_acc"] >= 0.9 and f["attacked.trigger_acc"] == f["attack.trigger_acc"]
    assert f["restore.trigger_acc"] is not None and "finetune.trigger_acc" not in f
    assert f["n_trigger"] == len(__import__("wmstudio.runlog_reader").runlog_reader.RunLogReader(demo_run).trigger()["labels"])
    assert f["num_classes"] == 10 and f["n_test"] > 0 and (f["seed.run"], f["seed.split"]) == (0, 0)
    assert f["seed.trigger"] == load_config(data=data).trigger.seed  # the trigger set came from the embed log


def test_a_case_axis_sets_several_keys_per_value_and_names_them() -> None:
    base = read_config_data(example_config("demo"))
    cases = [{"name": "ft", "finetune.lr": 0.001}, {"name": "int4", "attack.kind": "quantize", "attack.bits": 4},
             {"attack": {"kind": "prune", "sparsity": 0.8}}]
    spec = expand("x", base, {"attack": cases, "run.seed": [0, 1]})
    assert len(spec.runs) == 6 and len({r.embed_id for r in spec.runs}) == 2  # attacks share the seed's embed
    by_name = {r.values["attack"]: r for r in spec.runs if r.values["run.seed"] == 0}
    assert set(by_name) == {"ft", "int4", "kind=prune, sparsity=0.8"}
    assert by_name["int4"].config["attack"] == {"kind": "quantize", "bits": 4}
    assert by_name["ft"].config["finetune"]["lr"] == 0.001
    from wmstudio.errors import ConfigError

    with pytest.raises(ConfigError, match="axes.attack.attack.bitz"):
        expand("x", base, {"attack": [{"attack.bitz": 4}]})
    with pytest.raises(ConfigError, match="share a name"):
        expand("x", base, {"attack": [{"name": "a", "attack.bits": 4}, {"name": "a", "attack.bits": 8}]})


def test_records_written_before_the_attack_columns_still_report(tmp_path) -> None:
    """A sweep folder from before `attacked.*` (fine-tune finals only) reports as before, plus the new columns."""
    write_json(tmp_path / "sweep.json", {"name": "old", "axes": {"finetune.lr": [0.01, 0.03]},
                                         "runs": [{"run_id": "a", "values": {"finetune.lr": 0.01}},
                                                  {"run_id": "b", "values": {"finetune.lr": 0.03}}]})
    for rid, lr, acc in (("a", 0.01, 0.9), ("b", 0.03, 0.2)):
        write_json(tmp_path / "runs" / f"{rid}.json", {
            "run_id": rid, "values": {"finetune.lr": lr}, "status": "finished", "seconds": 1.0,
            "finals": {"finetune.trigger_acc": acc, "restore.trigger_acc": 0.5, "finetune.drift_rel": 0.1}})
    rep = write_report(tmp_path)
    a = next(r for r in rep["rows"] if r["run_id"] == "a")
    assert a["attacked.trigger_acc"] == 0.9 and a["finetune.trigger_acc"] == 0.9 and a["gain"] == pytest.approx(-0.4)
    assert "cells" not in rep and not (tmp_path / "cells.csv").exists()  # no seed axis: no per-cell intervals
    md = (tmp_path / "report.md").read_text()
    assert md.count("| finished |") == 2 and "persistence_matrix.png" in md and "Per cell" not in md


def test_collapsed_runs_are_flagged_excluded_and_counted(tmp_path) -> None:
    """Run 2 (attacked model near chance), run 4 (restored model answers one class), run 5 (flagged in the log):
    excluded from the cells, comparisons and figures; the report says how many and why. Run 1 records controls."""
    runs = [({"attack.kind": "prune", "run.seed": s}, (a, 0.9)) for s, a in ((0, 0.3), (1, 0.35), (2, 1.0))]
    runs += [({"attack.kind": "noise", "run.seed": s}, (0.9, r)) for s, r in ((0, 0.95), (1, 0.9), (2, 0.92))]
    counts = {"n_trigger": 50, "n_test": 400, "num_classes": 10, "seed.run": 0, "seed.trigger": 1, "seed.split": 0}
    extra = {0: counts, 1: {**counts, "attacked.control_acc": 0.3, "attacked.trigger_effect": 0.05,
                            "restore.control_acc": 0.1, "restore.majority_share": 0.2},
             2: {"attacked.test_acc": 0.11},  # no majority share recorded: test accuracy near chance alone
             4: {"restore.majority_share": 0.93, "restore.test_acc": 0.6},
             5: {"restore.collapsed": 1.0}}
    _fake_sweep(tmp_path, runs, extra=extra, base={"data": {"dataset": "digits"}})
    rep = write_report(tmp_path)
    assert rep["excluded"] == ["r2", "r4", "r5"]
    rows = {r["run_id"]: r for r in rep["rows"]}
    assert "attacked model collapsed: test accuracy 0.110 is within 0.1 of chance (0.100)" in rows["r2"]["flag"]
    assert "restored model collapsed: one class takes 93% of the test predictions" in rows["r4"]["flag"]
    assert rows["r5"]["flag"] == "restored model collapsed: flagged as collapsed in the log"
    assert not rows["r1"]["flag"] and rows["r1"]["restore.trigger_effect"] == pytest.approx(0.8)  # 0.9 - 0.1
    cells = {c["attack.kind"]: c for c in rep["cells"]}
    assert (cells["prune"]["n"], cells["prune"]["excluded"]) == (2, 1)
    assert cells["prune"]["attacked.trigger_acc"].values == (0.3, 0.35)  # the collapsed 1.0 never counts as survival
    assert (cells["noise"]["n"], cells["noise"]["excluded"]) == (1, 2)
    assert all(c["seeds_b"] == 1 for c in rep["comparisons"]) and all("not tested" in c["verdict"]
                                                                       for c in rep["comparisons"])
    md = (tmp_path / "report.md").read_text()
    assert "**3 finished runs excluded** from every cell, comparison and figure" in md
    assert "1 with the attacked model collapsed, 2 with the restored model collapsed" in md
    assert "- `r2` (kind=prune, seed=2): attacked model collapsed" in md and "3 excluded as collapsed" in md
    lines = (tmp_path / "report.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert {"flag", "attacked.control_acc", "attacked.trigger_effect", "n_trigger", "seed.trigger",
            "attacked.trigger_acc.wilson95_lo", "gain.newcombe95_hi"} <= set(header)
    r0 = dict(zip(header, next(x for x in lines if x.startswith("r0,")).split(","), strict=True))
    assert r0["attacked.control_acc"] == "not recorded" and r0["n_trigger"] == "50"
    w = wilson(15, 50)  # 0.3 of 50 triggers
    assert (float(r0["attacked.trigger_acc.wilson95_lo"]), float(r0["attacked.trigger_acc.wilson95_hi"])) == \
        pytest.approx((w.lo, w.hi), abs=1e-4)
    r1 = dict(zip(header, next(x for x in lines if x.startswith("r1,")).split(","), strict=True))
    assert r1["attacked.control_acc"] == "0.3000" and r1["attacked.trigger_effect"] == "0.0500"


def test_report_refresh_rereads_finals_from_the_run_logs(demo_run, tmp_path, capsys) -> None:
    """Records written before the control was recorded lack it; `report --refresh` re-derives them from the logs."""
    import json
    import shutil

    from wmstudio.cli import main

    folder = tmp_path / "sweep"
    (folder / "runs").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"name": "old", "axes": {"finetune.lr": [0.02]},
                                                   "runs": [{"run_id": "a", "values": {"finetune.lr": 0.02}}]}))
    (folder / "runs" / "a.json").write_text(json.dumps({"run_id": "a", "values": {"finetune.lr": 0.02},
                                                        "status": "finished", "finals": {"restore.trigger_acc": 0.5}}))
    shutil.copy(demo_run, folder / "runs" / "a.h5")
    assert main(["report", str(folder), "--refresh"]) == 0
    assert "1 records re-read" in capsys.readouterr().out
    finals = json.loads((folder / "runs" / "a.json").read_text())["finals"]
    assert finals["restore.control_acc"] is not None and finals["n_trigger"] == 100
    assert finals["restore.trigger_acc"] != 0.5  # the log's value, not the stale record's


def test_parts_without_a_recorded_class_count_take_it_from_a_part_on_the_same_data(tmp_path) -> None:
    """An ImageFolder data set has no built-in class count; an older part's records lack the logged one. Reported
    together with a part on the same data that recorded it, its near-chance models are still flagged."""
    from wmstudio.sweep.report import collect, collect_many

    base = {"data": {"dataset": "imagefolder", "root": "cifar.tar.gz"}}
    axes = {"attack.kind": ["prune"], "run.seed": [0]}
    new, old = tmp_path / "new", tmp_path / "old"
    _fake_sweep(new, [({"attack.kind": "prune", "run.seed": 0}, (0.5, 0.6))], "n", axes, {0: {"num_classes": 10}}, base)
    _fake_sweep(old, [({"attack.kind": "prune", "run.seed": 0}, (1.0, 1.0))], "o", axes,
                {0: {"attacked.test_acc": 0.12}}, base)
    assert not collect(old)[2][0]["excluded"]  # alone: no class count, so no chance to compare with
    rows = {r["run_id"]: r for r in collect_many([new, old])[2]}
    assert rows["o0"]["excluded"] and "within 0.1 of chance" in rows["o0"]["flag"]
    assert not rows["n0"]["excluded"]


def test_a_stage_that_did_not_run_has_empty_control_cells_not_not_recorded() -> None:
    from wmstudio.sweep.report import fmt_control

    row = {"status": "finished", "attacked.trigger_acc": 0.6, "attacked.control_acc": None,
           "restore.trigger_acc": None, "restore.control_acc": None}
    assert fmt_control(row, "attacked.control_acc") == "not recorded"  # the stage ran, its log predates controls
    assert fmt_control(row, "restore.control_acc") == ""  # a sweep without restoration
    assert fmt_control({**row, "status": "failed"}, "attacked.control_acc") == ""


def test_the_drift_figure_plots_the_effect_with_its_interval_and_falls_back_without_a_control() -> None:
    """measurement.md: a watermark figure shows the effect (trigger acc - control) with its interval."""
    from wmstudio.sweep.intervals import newcombe, wilson_of
    from wmstudio.sweep.report_figures import drift_points

    row = {"attacked.drift_rel": 0.3, "restore.trigger_acc": 0.9, "restore.control_acc": 0.1, "n_trigger": 100}
    (d, y, lo, hi), = drift_points([row], "restore", with_control=True)
    c = newcombe(0.9, 0.1, 100, 100)
    assert (d, y, lo, hi) == pytest.approx((0.3, 0.8, c.lo, c.hi)) and lo < 0.8 < hi
    (_, y, lo, hi), = drift_points([row], "restore", with_control=False)
    w = wilson_of(0.9, 100)
    assert (y, lo, hi) == pytest.approx((0.9, w.lo, w.hi))
    assert drift_points([{**row, "attacked.drift_rel": None}], "restore", True).shape == (0, 4)
