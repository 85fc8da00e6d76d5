"""The decision rules a sweep file declares before its runs, applied by the report (wmstudio/sweep/decisions.py)."""

from __future__ import annotations

import math

import pytest

from wmstudio.errors import ConfigError
from wmstudio.sweep.decisions import decide, markdown, parse_rule

AXES = ["embed.method", "attack", "seed"]
PERSIST = {"rule": "persistence", "baseline": "plain", "min_difference": 0.15, "alpha": 0.05}


def row(method: str, attack: str, seed: str, trig: float, ctrl: float, **extra: object) -> dict:
    r = {"run_id": f"{method}-{attack}-{seed}", "status": "finished", "embed.method": method, "attack": attack,
         "seed": seed, "n_trigger": 100, "watermarked.test_acc": 0.87, "watermarked.trigger_acc": 1.0,
         "attacked.trigger_acc": trig, "attacked.control_acc": ctrl, "attacked.trigger_effect": trig - ctrl,
         "excluded": False}
    r.update(extra)
    return r


def grid(effects: dict[str, list[float]], attack: str = "sgd 1e-2") -> list[dict]:
    return [row(m, attack, f"seed {i}", 0.1 + e, 0.1) for m, es in effects.items() for i, e in enumerate(es)]


def test_a_method_more_persistent_in_every_seed_is_reproduced() -> None:
    rows = grid({"plain": [0.05, 0.10, 0.00], "certified": [0.80, 0.85, 0.75]})
    res = decide(PERSIST, AXES, rows)
    (cell,) = res["cells"]
    assert cell["reading"] == "more persistent" and cell["differences"] == pytest.approx([0.75, 0.75, 0.75])
    assert cell["p_holm"] < 0.05 and res["verdict"].startswith("reproduced: certified more persistent")
    assert "| certified | sgd 1e-2 | 3 | +0.75, +0.75, +0.75 | +0.75 |" in markdown(res)


def test_one_seed_against_the_others_shows_no_difference() -> None:
    rows = grid({"plain": [0.05, 0.10, 0.30], "rowback": [0.60, 0.55, 0.20]})  # D: +0.55, +0.45, -0.10
    res = decide(PERSIST, AXES, rows)
    assert res["cells"][0]["reading"] == "no difference shown"
    assert res["verdict"].startswith("not reproduced: no method differs")


def test_a_small_mean_difference_is_not_a_difference() -> None:
    rows = grid({"plain": [0.40, 0.42, 0.38], "certified": [0.45, 0.50, 0.43]})  # all > 0, mean 0.06
    assert decide(PERSIST, AXES, rows)["cells"][0]["reading"] == "no difference shown"


def test_failed_embeddings_and_collapsed_runs_are_left_out_and_counted() -> None:
    rows = grid({"plain": [0.05, 0.10, 0.00], "certified": [0.80, 0.85, 0.75]})
    rows[3]["watermarked.test_acc"] = 0.80  # certified seed 0: below 0.85 after embedding
    rows[4].update(excluded=True, flag="collapsed: test accuracy 0.12 within 0.10 of chance")
    res = decide(PERSIST, AXES, rows)
    cell = res["cells"][0]
    assert cell["seeds"] == 1 and cell["reading"].startswith("not decided: 1 seed pair")
    assert any("certified, seed 0: embedding failed" in n for n in res["left_out"])
    assert any("excluded, collapsed" in n for n in res["left_out"])
    assert res["verdict"].startswith("not decided")


def test_holm_correction_over_every_pair() -> None:
    rows = grid({"plain": [0.05, 0.10, 0.00], "certified": [0.80, 0.85, 0.75], "rowback": [0.06, 0.09, 0.02]})
    rows += grid({"plain": [0.5, 0.5, 0.5], "certified": [0.5, 0.5, 0.5], "rowback": [0.5, 0.5, 0.5]}, "sgd 1e-3")
    res = decide(PERSIST, AXES, rows)
    assert len(res["cells"]) == 4
    ps = [c["p_welch"] for c in res["cells"]]
    assert all(c["p_holm"] >= c["p_welch"] for c in res["cells"] if math.isfinite(c["p_welch"]))
    assert min(c["p_holm"] for c in res["cells"]) == pytest.approx(min(1.0, 4 * min(ps)))


def restore_row(attack: str, seed: str, ta: float, tr: float, ca: float = 0.1, cr: float = 0.1, **extra: object) -> dict:
    r = row("plain", attack, seed, ta, ca)
    r.update({"restore.trigger_acc": tr, "restore.control_acc": cr, "restore.trigger_effect": tr - cr,
              "restore.peak_trigger_acc": max(tr, ta) + 0.02, "attacked.drift_rel": 0.3, "restore.drift_rel": 0.31})
    r.update(extra)
    return r


RESTORE = {"rule": "restoration", "min_gain": 0.2, "full": 0.95}


def test_restoration_reproduced_partly_and_not() -> None:
    rows = [restore_row("sgd 1e-2", f"seed {i}", 0.2, 0.97) for i in range(3)]
    rows += [restore_row("sgd 5e-2", "seed 0", 0.1, 0.6), restore_row("sgd 5e-2", "seed 1", 0.1, 0.15),
             restore_row("sgd 5e-2", "seed 2", 0.1, 0.12)]
    rows += [restore_row("prune 70%", f"seed {i}", 0.3, 0.35) for i in range(3)]
    res = decide(RESTORE, ["attack", "seed"], rows)
    readings = {c["attack"]: c["reading"] for c in res["cells"]}
    assert readings == {"sgd 1e-2": "reproduced", "sgd 5e-2": "partly", "prune 70%": "not reproduced"}
    first = res["cells"][0]["seeds"][0]
    assert first["gain"] == pytest.approx(0.77) and 0 < first["gain_lo"] < 0.77 < first["gain_hi"] <= 2
    assert first["peak_trigger"] == pytest.approx(0.99) and first["full"]
    assert "Up to 100% (restoration brings a lost watermark back to trigger accuracy >= 0.95): reproduced" in res["verdict"]
    text = markdown(res)
    assert "| sgd 1e-2 | seed 0 | +0.10 | +0.87 | +0.77 [" in text and "0.97 (0.99)" in text


def test_an_attack_that_left_the_watermark_has_nothing_to_restore_and_is_not_up_to_100() -> None:
    """Seed 0 of the CIFAR-10 restoration sweep: SGD at 3e-3 left trigger accuracy at 0.97 and restoration ended
    at 0.99, which the literal rule read as "up to 100%: reproduced" and as restoration "not reproduced"."""
    rows = [restore_row("sgd 3e-3", f"seed {i}", 0.97, 0.99) for i in range(3)]
    rows += [restore_row("sgd 1e-2", "seed 0", 0.62, 0.88), restore_row("sgd 1e-2", "seed 1", 0.95, 0.99),
             restore_row("sgd 1e-2", "seed 2", 0.50, 0.80)]
    res = decide(RESTORE, ["attack", "seed"], rows)
    readings = {c["attack"]: c["reading"] for c in res["cells"]}
    assert readings["sgd 3e-3"].startswith("nothing to restore: the attack left the watermark")
    assert readings["sgd 1e-2"] == "reproduced (1 seed(s) where the attack left the watermark not counted)"
    assert res["verdict"].endswith("Up to 100% (restoration brings a lost watermark back to trigger accuracy >= "
                                   "0.95): not reproduced")  # 0.99 after 0.97 is no watermark brought back
    rows.append(restore_row("sgd 5e-2", "seed 0", 0.30, 0.97))
    res = decide(RESTORE, ["attack", "seed"], rows)
    assert res["verdict"].endswith("reproduced")  # that one restored model counts for "up to 100%"
    # two seeds run of three: the reading says it may change
    rows.append({**restore_row("prune 70%", "seed 2", 0.3, 0.9), "status": "pending"})
    rows += [restore_row("prune 70%", f"seed {i}", 0.3, 0.9) for i in range(2)]
    prune = next(c for c in decide(RESTORE, ["attack", "seed"], rows)["cells"] if c["attack"] == "prune 70%")
    assert prune["reading"] == "reproduced so far (1 seed(s) not run yet)"
    # one seed decides nothing about "in every seed" (the others pending)
    assert res["cells"][-1]["reading"] == "not decided: 1 seed with a removed watermark, 2 needed (G >= 0.2 there)"


def test_the_report_carries_the_restorations_peak_into_the_decision(tmp_path) -> None:
    """The records held the peak along the restoration but the report's rows dropped it ("n/a" in decision.md)."""
    import json

    from wmstudio.sweep.report import collect

    folder = tmp_path / "sweep"
    (folder / "runs").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"name": "s", "axes": {"attack": ["sgd"]}, "runs": [
        {"run_id": "r1", "values": {"attack": "sgd"}}]}))
    (folder / "runs" / "r1.json").write_text(json.dumps({
        "run_id": "r1", "status": "finished", "values": {"attack": "sgd"},
        "finals": {"attacked.trigger_acc": 0.6, "restore.trigger_acc": 0.88, "restore.peak_trigger_acc": 0.94,
                   "restore.peak_trigger_acc_at": 6.0, "restore.peak_trigger_effect": 0.92}}))
    _meta, _axes, rows = collect(folder)
    assert rows[0]["restore.peak_trigger_acc"] == 0.94 and rows[0]["restore.peak_trigger_acc_at"] == 6.0
    assert rows[0]["restore.peak_trigger_effect"] == 0.92


def test_a_gain_of_the_control_is_not_a_restored_watermark() -> None:
    # trigger accuracy rises 0.2 -> 0.6 but the control rises with it: the model leans, the effect stays
    rows = [restore_row("sgd 1e-2", f"seed {i}", 0.2, 0.6, ca=0.15, cr=0.55) for i in range(3)]
    res = decide(RESTORE, ["attack", "seed"], rows)
    assert res["cells"][0]["reading"] == "not reproduced"
    assert "Up to 100%" in res["verdict"] and res["verdict"].endswith("not reproduced")


@pytest.mark.parametrize(("raw", "field"), [({"rule": "best"}, "decision.rule"),
                                            ({"rule": "persistence", "min_diff": 0.1}, "decision.min_diff"),
                                            ({"rule": "persistence", "alpha": 0.9}, "decision.alpha"),
                                            ({"rule": "persistence", "min_difference": "big"}, "decision.min_difference"),
                                            ({"rule": "persistence", "method_axis": "embed.kind"}, "decision.method_axis"),
                                            ("persistence", "decision")])
def test_a_bad_rule_names_its_field(raw: object, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_rule(raw, AXES)
    assert e.value.field == field


def test_the_comparison_sweeps_declare_their_rules_and_the_report_applies_them(tmp_path) -> None:
    import json
    import shutil

    from wmstudio.resources import example_config
    from wmstudio.sweep import load_sweep, write_report

    spec = load_sweep(example_config("comparison_cifar10_persistence"))
    assert spec.decision is not None and spec.decision["rule"] == "persistence"
    assert json.loads(spec.to_json())["decision"]["min_difference"] == 0.15
    assert load_sweep(example_config("comparison_cifar10_restoration")).decision["rule"] == "restoration"
    # a report over a folder whose sweep.json names a rule: decision.md beside report.md
    folder = tmp_path / "sweep"
    (folder / "runs").mkdir(parents=True)
    meta = json.loads(spec.to_json())
    (folder / "sweep.json").write_text(json.dumps(meta))
    rep = write_report(folder)
    assert (folder / "decision.md").is_file() and rep["decision"]["verdict"].startswith("not decided")
    assert json.loads((folder / "decision.json").read_text())["rule"]["rule"] == "persistence"
    # a crafted rule in someone else's sweep.json is refused with the file named
    meta["decision"] = {"rule": "persistence", "alpha": "x"}
    (folder / "sweep.json").write_text(json.dumps(meta))
    from wmstudio.errors import RunLogError

    with pytest.raises(RunLogError, match=r"sweep\.json: .*decision\.alpha"):
        write_report(folder, overwrite=True)
    shutil.rmtree(folder)
