"""Sharpness after embedding against the watermark left by each attack (``wmstudio sharpness``)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from wmstudio.errors import RunLogError
from wmstudio.sweep.sharpness import correlations, markdown, ranks, spearman


def test_spearman_matches_scipy_with_ties_and_its_fieller_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 12).astype(float)  # ties
    y = x + rng.normal(0, 2, 12)
    rho, lo, hi = spearman(list(x), list(y))
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    half = 1.959964 * math.sqrt(1.06 / 9)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half)))
    assert lo < rho < hi
    assert list(ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    assert spearman([1, 2, 3], [1, 3, 2])[1:] == (None, None)  # fewer than 4 models: no interval
    assert math.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4])[0])  # no spread: undefined, not 0


def _fake(folder: Path, effects: dict[str, dict[str, float]]) -> None:
    """effects: embed id -> attack name -> effect after the attack."""
    (folder / "runs").mkdir(parents=True)
    (folder / "embeds").mkdir()
    runs = []
    for eid, by_attack in effects.items():
        (folder / "embeds" / f"{eid}.json").write_text(json.dumps(
            {"run_id": eid, "kind": "embed", "status": "finished", "values": {"seed": eid}, "seconds": 1.0}))
        for attack, effect in by_attack.items():
            rid = f"{eid}-{attack.replace(' ', '')}"
            values = {"seed": eid, "attack": attack}
            runs.append({"run_id": rid, "values": values})
            finals = {"attacked.trigger_effect": effect, "attacked.collapsed": 1.0 if effect < 0 else 0.0}
            (folder / "runs" / f"{rid}.json").write_text(json.dumps(
                {"run_id": rid, "kind": "attack", "status": "finished", "values": values, "embed_id": eid,
                 "finals": finals, "seconds": 1.0}))
    (folder / "sweep.json").write_text(json.dumps({"name": "fake", "axes": {}, "runs": runs}))


def test_correlations_per_attack_and_measure_leave_out_collapsed_models(tmp_path) -> None:
    sharp = {f"e{i}": {"trigger top eigenvalue": float(i), "clean trace": float(-i)} for i in range(6)}
    effects = {f"e{i}": {"sgd 1e-2": 0.1 * i, "sgd 5e-2": 0.5 - 0.05 * i} for i in range(6)}
    effects["e5"]["sgd 5e-2"] = -1.0  # flagged collapsed: not a watermark's effect
    _fake(tmp_path, effects)
    rows = {(r.attack, r.measure): r for r in correlations(tmp_path, sharp)}
    assert rows[("attack=sgd 1e-2", "trigger top eigenvalue")].rho == pytest.approx(1.0)
    assert rows[("attack=sgd 1e-2", "clean trace")].rho == pytest.approx(-1.0)
    later = rows[("attack=sgd 5e-2", "trigger top eigenvalue")]
    assert later.n == 5 and later.rho == pytest.approx(-1.0) and "e5" not in {p["embed_id"] for p in later.points}
    assert ("attack=sgd 1e-2", "clean top eigenvalue") not in rows  # not measured: no row
    md = markdown(list(rows.values()))
    assert "| attack=sgd 1e-2 | trigger top eigenvalue | 6 | +1.00 [" in md
    with pytest.raises(RunLogError, match="--measure"):
        markdown([])


def test_the_cli_measures_the_embed_curvature_and_writes_the_table(demo_run, tmp_path, capsys) -> None:
    folder = tmp_path / "sweep"
    _fake(folder, {f"e{i}": {"sgd": 0.2 * i} for i in range(2)})
    for i in range(2):  # two watermarked models: the demo's log twice (same curvature, so rho is undefined)
        shutil.copy(demo_run, folder / "embeds" / f"e{i}.h5")
    from wmstudio.cli import main
    from wmstudio.curvature.job import read

    assert main(["sharpness", str(folder), "--measure", "--images", "200", "--probes", "2", "-q"]) == 0
    held = read(folder / "embeds" / "e0.h5")["embed"]
    assert set(held) == {"clean", "trigger"} and held["trigger"]["eigenvalues"][0] > 0
    out = capsys.readouterr().out
    assert "| attack=sgd | trigger top eigenvalue | 2 | undefined (no spread) |" in out
    saved = json.loads((folder / "sharpness.json").read_text())
    assert {r["measure"] for r in saved} == {"clean top eigenvalue", "trigger top eigenvalue", "clean trace",
                                             "trigger trace"}
    assert (folder / "sharpness.md").read_text().startswith("# Sharpness after embedding")


def test_a_link_planted_as_an_output_in_someone_elses_sweep_folder_is_refused_not_written_through(
        tmp_path, monkeypatch, capsys) -> None:
    sharp = {f"e{i}": {"trigger top eigenvalue": float(i)} for i in range(4)}
    _fake(tmp_path / "sweep", {f"e{i}": {"sgd": 0.1 * i} for i in range(4)})
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "sweep" / "sharpness.md").symlink_to(outside)
    from wmstudio.cli import main
    from wmstudio.sweep import sharpness as module

    real = module.correlations
    monkeypatch.setattr(module, "correlations", lambda folder: real(folder, sharp))
    assert main(["sharpness", str(tmp_path / "sweep"), "-q"]) == 2
    assert "sharpness.md: is a symbolic link" in capsys.readouterr().err
    assert outside.read_text() == "keep me"
