"""Seeds in sweeps: `run.seed` / `data.split_seed` axes aggregated into means and 95% t-intervals per cell,
restoration's gain with its own interval, and the attack family (`attack.kind`) as an axis."""

from __future__ import annotations

import json
import math

import pytest

from wmstudio.config import read_config_data
from wmstudio.resources import example_config
from wmstudio.sweep import expand, write_report
from wmstudio.sweep.intervals import t_interval
from wmstudio.sweep.records import write_json
from wmstudio.sweep.tasks import run_task


def test_t_interval_matches_the_textbook_formula() -> None:
    iv = t_interval([0.2, 0.4, 0.6])
    assert iv.mean == pytest.approx(0.4) and iv.n == 3
    assert iv.half_width == pytest.approx(4.302653 * 0.2 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027
    assert math.isnan(t_interval([0.5]).lo) and t_interval([0.5]).text() == "0.500 (n=1)"
    assert t_interval([0.3, 0.3, None, float("nan")]).half_width == 0.0
    assert t_interval([]).n == 0


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


def _fake_sweep(folder, runs, prefix: str = "r", axes: dict | None = None) -> None:
    """A sweep folder as the runner leaves it: sweep.json and one finished record per run."""
    axes = axes or {"attack.kind": ["prune", "noise"], "run.seed": [0, 1, 2]}
    write_json(folder / "sweep.json", {"name": f"fake {prefix}", "axes": axes,
                                       "runs": [{"run_id": f"{prefix}{i}", "values": v} for i, (v, _) in enumerate(runs)]})
    for i, (values, (attacked, restored)) in enumerate(runs):
        write_json(folder / "runs" / f"{prefix}{i}.json", {
            "run_id": f"{prefix}{i}", "values": values, "status": "finished", "seconds": 1.0,
            "finals": {"attacked.trigger_acc": attacked, "restore.trigger_acc": restored, "attacked.test_acc": 0.9,
                       "restore.test_acc": 0.95, "attacked.drift_rel": 0.1, "watermarked.trigger_acc": 1.0}})


def test_report_gives_each_cell_its_seeds_mean_interval_and_gain_interval(tmp_path) -> None:
    runs = [({"attack.kind": "prune", "run.seed": s}, (a, r)) for s, a, r in [(0, 0.2, 0.5), (1, 0.4, 0.6), (2, 0.6, 1.0)]]
    runs += [({"attack.kind": "noise", "run.seed": s}, (0.9, 0.95)) for s in (0, 1, 2)]
    _fake_sweep(tmp_path, runs)
    rep = write_report(tmp_path)
    prune = next(c for c in rep["cells"] if c["attack.kind"] == "prune")
    assert prune["n"] == 3
    assert prune["attacked.trigger_acc"].mean == pytest.approx(0.4)
    assert prune["attacked.trigger_acc"].half_width == pytest.approx(t_interval([0.2, 0.4, 0.6]).half_width)
    assert prune["gain"].mean == pytest.approx(0.3)  # per-run gains 0.3, 0.2, 0.4
    assert prune["gain"].half_width == pytest.approx(t_interval([0.3, 0.2, 0.4]).half_width)
    noise = next(c for c in rep["cells"] if c["attack.kind"] == "noise")
    assert noise["gain"].mean == pytest.approx(0.05) and noise["gain"].half_width == pytest.approx(0.0, abs=1e-12)
    md = (tmp_path / "report.md").read_text()
    assert "## Per cell over seeds" in md and "| prune | 3 | 0.400 [" in md
    header = (tmp_path / "cells.csv").read_text().splitlines()[0]
    assert header.startswith("attack.kind,seeds,attacked.trigger_acc.mean,attacked.trigger_acc.ci95_lo")
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
