"""Null models: the stored distribution, the empirical p-value and decision in `wmstudio verify --null`,
`wmstudio null-models` on the built-in digits, and the app's histogram widget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wmstudio.cli import main
from wmstudio.errors import RunLogError
from wmstudio.null_models import NullDistribution, empirical_p_value, empirical_threshold


def test_empirical_p_value_counts_the_suspect_as_one_more_draw() -> None:
    null = [3, 5, 7, 9, 11, 12, 13, 14, 15, 20]
    assert empirical_p_value(21, null) == pytest.approx(1 / 11)
    assert empirical_p_value(12, null) == pytest.approx(6 / 11)  # 12, 13, 14, 15, 20 tie or beat it
    assert empirical_p_value(0, null) == 1.0
    # at fpr 0.2 with 10 nulls, one null may score as high: the threshold lies just above the second best
    assert empirical_threshold(null, 0.2) == 16
    assert empirical_p_value(16, null) <= 0.2 < empirical_p_value(15, null)
    assert empirical_threshold(null, 0.01) is None  # 1 / (10 + 1) > 0.01: unreachable


def test_the_file_round_trips_and_a_foreign_file_is_refused(tmp_path) -> None:
    nd = NullDistribution(np.array([0.1, 0.05]), np.array([10, 5]), 100, 10, "t", "r", "", np.array([0.9, 0.8]),
                          np.array([1000, 1001]), ["a.h5", "b.h5"])
    back = NullDistribution.load(nd.save(tmp_path / "null.h5"))
    assert back.count == 2 and back.correct.tolist() == [10, 5] and back.source == ["a.h5", "b.h5"]
    assert back.n_triggers == 100 and back.seed.tolist() == [1000, 1001]
    (tmp_path / "other.h5").write_bytes(b"not hdf5")
    with pytest.raises(RunLogError, match="other.h5"):
        NullDistribution.load(tmp_path / "other.h5")


def test_null_models_cli_trains_unwatermarked_models_and_verify_ranks_the_suspect(demo_run, tmp_path, capsys) -> None:
    null = tmp_path / "null.h5"
    assert main(["null-models", str(Path(__file__).parents[1] / "resources/examples/demo.toml"), "--count", "2",
                 "--out", str(null), "--trigger", str(demo_run), "-s", "embed.epochs=3", "-s", "run.threads=2"]) == 0
    nd = NullDistribution.load(null)
    assert nd.count == 2 and nd.n_triggers == 100 and nd.seed.tolist() == [1000, 1001]
    assert nd.trigger_acc.max() < 0.5  # never saw the watermark
    assert (tmp_path / "null_models" / "null_000.h5").is_file()
    capsys.readouterr()
    model = tmp_path / "wm.pt"
    assert main(["export-model", f"{demo_run}:embed", "-o", str(model)]) == 0
    assert main(["verify", "-m", str(model), "-t", str(demo_run), "--null", str(null), "--fpr", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "empirical p  0.333" in out and "WATERMARK PRESENT at false-positive rate 0.4 (every test agrees)" in out
    assert main(["verify", "-m", str(model), "-t", str(demo_run), "--null", str(null)]) == 0
    out = capsys.readouterr().out
    assert "unreachable: 2 null models" in out and "the null models test did not reject" in out
    assert "WATERMARK PRESENT" not in out  # the null test fails at 0.01: the headline follows it


def test_a_null_file_of_another_trigger_set_is_refused(demo_run, tmp_path, capsys) -> None:
    null = NullDistribution(np.array([0.1]), np.array([5]), 50, 10).save(tmp_path / "n.h5")
    model = tmp_path / "wm.pt"
    main(["export-model", f"{demo_run}:embed", "-o", str(model)])
    assert main(["verify", "-m", str(model), "-t", str(demo_run), "--null", str(null)]) == 2
    assert "--null" in capsys.readouterr().err


def test_the_histogram_widget_shows_the_nulls_the_suspect_and_the_threshold(qtbot) -> None:
    from wmstudio.gui.null_histogram import NullHistogram

    w = NullHistogram(bins=10)
    qtbot.addWidget(w)
    w.show([0.05, 0.08, 0.12, 0.11, 0.31], suspect_acc=0.9, threshold=0.35)
    assert w.counts.tolist() == [2, 2, 0, 1, 0, 0, 0, 0, 0, 0]
    assert w.suspect_line is not None and w.suspect_line.value() == pytest.approx(0.9)
    assert w.threshold_line is not None and w.threshold_line.value() == pytest.approx(0.35)
    assert "5 null models" in w.caption.text() and "beaten or tied by 0" in w.caption.text()
    ticks = w.plot.getAxis("left").tickValues(0, 2.3, 200)  # whole models only (0.5 steps had been shown)
    assert ticks and all(float(v).is_integer() for _spacing, values in ticks for v in values), ticks
    w.show([0.1, 0.2], suspect_acc=0.15)
    assert w.threshold_line is None and w.counts.sum() == 2 and "no threshold reachable" in w.caption.text()


def test_the_settings_form_offers_the_attack_section(qtbot) -> None:
    """The app's form is generated from the config: [attack] appears with its kinds and bounds."""
    from PySide6.QtWidgets import QComboBox

    from wmstudio.gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    kind = form.widget("attack.kind")
    assert isinstance(kind, QComboBox) and kind.count() == 8
    form.set_value("attack.kind", "quantize")
    form.set_value("attack.bits", 4)
    cfg = form.config()
    assert cfg.attack.kind == "quantize" and cfg.attack.bits == 4
    assert form.sections["attack"].title == "2c · Removal attack: quantize"
    assert form.sections["attack"].header.text() == form.sections["attack"].title  # the header follows the kind
    assert "in place of sections 2 and 2b" in form.sections["attack"].header.toolTip()
    form.set_value("attack.kind", "finetune")
    assert form.sections["attack"].header.text() == "2c · Removal attack: off"
    # only the chosen kind's own settings are shown (Neural Cleanse had shown sparsity, bits, ...)
    from wmstudio import catalog

    layout = form.for_kinds["attack.bits"][0]
    assert not any(layout.isRowVisible(form.labels[p]) for p in form.for_kinds)  # kind finetune: none of them
    form.set_value("attack.kind", "neural_cleanse")
    shown = {p for p in form.for_kinds if layout.isRowVisible(form.labels[p])}
    assert shown == {p for p in form.for_kinds if p.startswith("attack.nc_")}
    form.set_value("attack.kind", "fine_prune")
    assert {p for p in form.for_kinds if layout.isRowVisible(form.labels[p])} == {"attack.sparsity"}
    assert all(set(kinds) <= set(catalog.ATTACKS.names()) for _form, kinds in form.for_kinds.values())


def test_null_models_from_given_checkpoints(demo_run, tmp_path, capsys) -> None:
    paths = []
    for stage in ("embed", "restore"):
        paths.append(str(tmp_path / f"{stage}.pt"))
        assert main(["export-model", f"{demo_run}:{stage}", "-o", paths[-1]]) == 0
    null = tmp_path / "given.h5"
    assert main(["null-models", "--checkpoints", *paths, "--trigger", str(demo_run), "--out", str(null)]) == 0
    nd = NullDistribution.load(null)
    assert nd.source == paths and nd.seed.tolist() == [-1, -1] and nd.recipe == "given checkpoints"
    assert nd.trigger_acc[0] == pytest.approx(1.0)  # the watermarked model itself scores 1.0 on its triggers
    assert main(["null-models", "--checkpoints", *paths, "--out", str(null)]) == 2
    assert "--trigger" in capsys.readouterr().err
