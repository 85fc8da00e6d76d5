"""Compare at the scale of a sweep (issue 24.10): distinct colours for many runs, colour by a setting,
TensorBoard smoothing, alignment on a stage's start, the run filter (Qt-free), and the view using them
with 60-100 runs: a scrolling run list instead of an overflowing legend, toggles that recompute nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wmstudio.gui.compare_curves import (
    GLOBAL,
    MISSING_COLOR,
    align,
    alignments,
    distinct_colors,
    ema,
    min_distance,
    run_matches,
    setting_colors,
    viridis,
)


# ------------------------------------------------------------------ Qt-free
def test_many_runs_get_distinct_colours_that_stay_when_runs_are_added() -> None:
    colors = distinct_colors(100)
    assert len(set(colors)) == 100
    assert min_distance(colors) > 0.05  # OKLab; about 0.02 is a just-noticeable difference
    assert distinct_colors(7) == colors[:7] and distinct_colors(40) == colors[:40]  # a run keeps its colour
    old = ("#2f7ed8", "#e4572e", "#3aa655", "#8e44ad", "#c9a227", "#17becf", "#d62728", "#7f7f7f")
    assert len({old[k % len(old)] for k in range(20)}) == 8  # what the view had: 20 runs, 8 colours


def test_colour_by_a_setting_numbers_on_a_scale_other_values_apart() -> None:
    colors, key = setting_colors([0.001, 0.1, 0.01, 0.001, None])
    assert colors[0] == colors[3] and len({colors[0], colors[1], colors[2]}) == 3 and colors[4] == MISSING_COLOR
    assert [text for text, _ in key] == ["0.001", "0.01", "0.1", "not recorded"]
    # learning rates spanning a factor of 100 are placed on a log scale: 0.01 is in the middle of it
    lo, mid, hi = setting_colors([0.001, 0.01, 0.1])[0]
    assert (lo, mid, hi) == (viridis(0.0), viridis(0.5), viridis(1.0))
    assert setting_colors([1, 2, 3])[0][1] == viridis(0.5)  # a narrow range: linear
    cat, key = setting_colors(["FTAL", "RTAL", "FTAL"])
    assert cat[0] == cat[2] != cat[1] and [t for t, _ in key] == ["FTAL", "RTAL"]


def _reference_ema(y: np.ndarray, w: float, starts: set[int]) -> np.ndarray:
    out, last, n = np.full(len(y), np.nan), 0.0, 0
    for i, v in enumerate(y):
        if i in starts:
            last, n = 0.0, 0
        if math.isfinite(v):
            last = w * last + (1 - w) * v
            n += 1
            out[i] = last / (1 - w ** n)
    return out


@pytest.mark.parametrize("weight", [0.0, 0.05, 0.6, 0.99])
def test_smoothing_is_tensorboards_debiased_ema_restarted_at_each_stage(weight: float) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    y[rng.random(500) < 0.1] = np.nan
    got = ema(y, weight, [200, 350])
    np.testing.assert_allclose(got, _reference_ema(y, weight, {200, 350}) if weight else y, atol=1e-12)
    step = np.r_[np.zeros(5), np.ones(5)]
    assert ema(step, 0.9, [5])[5] == pytest.approx(1.0)  # a new stage does not inherit the last one's level
    assert ema(np.full(4, 0.5), 0.9)[0] == pytest.approx(0.5)  # debiased: the first value is not pulled to 0
    p = np.array([1e-10, 1e-12, 1e-14])
    assert ema(p, 0.5, log=True)[0] == pytest.approx(1e-10)  # p-values smoothed as drawn: on a log scale


def test_alignment_on_a_stage_start_overlays_a_sweep_cell_and_the_demo() -> None:
    demo_steps = np.array([0, 60, 120, 120, 150, 180, 180, 200.0])
    demo_stage = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    demo_stages = [("embed", 0), ("finetune", 120), ("restore", 180)]
    cell_steps, cell_stage, cell_stages = np.array([0, 30, 60.0]), np.zeros(3, int), [("finetune", 0)]
    x, y, starts = align(demo_steps, np.arange(8.0), demo_stage, demo_stages, GLOBAL)
    assert list(x) == list(demo_steps) and starts == [3, 6]
    x, y, _ = align(demo_steps, np.arange(8.0), demo_stage, demo_stages, "attack")
    cx, _, _ = align(cell_steps, np.arange(3.0), cell_stage, cell_stages, "attack")
    assert list(x) == [0, 30, 60] == list(cx) and list(y) == [3, 4, 5]
    assert len(align(cell_steps, np.arange(3.0), cell_stage, cell_stages, "restore")[0]) == 0
    keys = [k for k, _ in alignments([[n for n, _ in demo_stages], ["attack"]])]
    assert keys == [GLOBAL, "embed", "attack", "restore"]  # finetune and attack align together


def test_the_filter_matches_names_and_settings() -> None:
    settings = {"finetune.lr": 0.01, "finetune.variant": "RTAL", "run.seed": 3}
    assert run_matches("", "cell 7", settings)
    assert run_matches("lr=0.01", "cell 7", settings) and run_matches("lr=1e-2 rtal", "cell 7", settings)
    assert not run_matches("lr=0.02", "cell 7", settings) and not run_matches("lr=0.01 FTAL", "cell 7", settings)
    assert run_matches("cell", "cell 7", settings) and run_matches("seed", "x", settings)
    assert not run_matches("seed=4", "x", settings) and run_matches("variant=rtal", "x", settings)


# ------------------------------------------------------------------ the view
def _runs(n: int, points: int = 30) -> list:
    from wmstudio.gui.series import RunSeries, StageSpan

    out = []
    for k in range(n):
        cell = k % 2 == 1  # a sweep cell: its fine-tuning alone, from step 0; else the demo's three stages
        names = [("finetune", points)] if cell else [("embed", points), ("finetune", points), ("restore", points)]
        s = RunSeries(label=f"run {k:02d}", log_path=f"/runs/{k:02d}.h5", log_status="finished")
        step = 0
        for j, (name, count) in enumerate(names):
            start = step
            for i in range(count):
                s.eval_rows.append({"global_step": float(step), "stage": float(j), "trigger_acc": (k % 10) / 10 + i / 1000,
                                    "test_acc": 0.9})
                step += 4
            s.stages.append(StageSpan(name, start, step - 4, "finished"))
        lr = (0.001, 0.01, 0.1)[k % 3]
        out.append((s, {"run": {"name": s.label, "seed": 0}, "finetune": {"lr": lr}}))
    return out


def _view(qtbot, runs):  # noqa: ANN001, ANN202
    from wmstudio.gui.compare_view import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    qtbot.waitExposed(view)
    for s, c in runs:
        view.add_run(s, c)
    qtbot.waitUntil(lambda: "more coming" not in view.count_label.text(), timeout=10_000)
    return view


def test_sixty_runs_are_listed_in_distinct_colours_in_a_scrolling_list_not_an_overflowing_legend(qtbot) -> None:
    from wmstudio.gui.compare_view import COLOR_ROLE

    view = _view(qtbot, _runs(60))
    assert len(view.curves) == 60
    swatches = [view.list.item(i).data(COLOR_ROLE) for i in range(60)]
    assert len(set(swatches)) == 60 and swatches == [c.opts["pen"].color().name() for c in view.curves.values()]
    assert len(view.legend.items) == 0 and "run list" in view.plot.titleLabel.text  # no 15-row legend over the data
    qtbot.waitUntil(lambda: view.list.verticalScrollBar().maximum() > 0, timeout=5000)  # the list scrolls
    assert all(c.opts["symbol"] is None for c in view.curves.values())  # lines only: dots would blur 60 curves
    # colour by a setting: runs with the same learning rate share a colour, and the legend is the key
    view.color_box.setCurrentIndex(view.color_box.findData("finetune.lr"))
    pens = {p: c.opts["pen"].color().name() for p, c in view.curves.items()}
    assert pens["/runs/00.h5"] == pens["/runs/03.h5"] != pens["/runs/01.h5"]
    assert [label.text for _s, label in view.legend.items] == ["lr = 0.001", "lr = 0.01", "lr = 0.1"]


def test_filter_toggles_smoothing_and_alignment_in_the_view(qtbot) -> None:
    from PySide6.QtCore import Qt

    view = _view(qtbot, _runs(12))
    view.filter_edit.setText("lr=0.01")
    qtbot.waitUntil(lambda: len(view.curves) == 4, timeout=5000)  # runs 1, 4, 7, 10
    assert sorted(view.curves) == ["/runs/01.h5", "/runs/04.h5", "/runs/07.h5", "/runs/10.h5"]
    assert sum(not view.list.item(i).isHidden() for i in range(12)) == 4
    assert "4 match the filter" in view.count_label.text()
    view.list.item(4).setCheckState(Qt.CheckState.Unchecked)
    assert "/runs/04.h5" not in view.curves
    view.filter_edit.setText("")
    qtbot.waitUntil(lambda: len(view.curves) == 11, timeout=5000)
    # smoothing: the drawn values are the debiased EMA, restarted where a stage begins
    run = view.runs[0]
    view.set_smoothing(0.6)
    x, y = view.curves[run.log_path].getData()
    raw = np.array([r["trigger_acc"] for r in run.eval_rows])
    np.testing.assert_allclose(y, ema(raw, 0.6, [30, 60]))
    view.set_smoothing(0.0)
    # alignment: the demo's fine-tuning (from step 120) and a sweep cell's (from step 0) both start at 0
    assert view.curves["/runs/00.h5"].getData()[0][0] == 0 and view.runs[0].stages[1].start_step == 120
    view.set_alignment("attack")
    for path in ("/runs/00.h5", "/runs/01.h5"):
        x, _ = view.curves[path].getData()
        assert x[0] == 0 and x[-1] == 116 and len(x) == 30
    assert view.plot.getAxis("bottom").labelText == "steps since the attack began"
    view._refresh()
    with pytest.raises(ValueError, match="no run has a stage"):
        view.set_alignment("pretrain")


def test_with_a_hundred_runs_a_toggle_recomputes_nothing_and_a_new_metric_arrives_in_turns(qtbot, monkeypatch) -> None:
    from PySide6.QtCore import Qt

    from wmstudio.gui import compare_items, compare_view

    view = _view(qtbot, _runs(100, points=40))
    assert len(view.curves) == 100
    computed: list[str] = []
    original = compare_items.RunCurves.points

    def counting(self, series, choice):  # noqa: ANN001, ANN202
        computed.append(series.log_path)
        return original(self, series, choice)

    monkeypatch.setattr(compare_items.RunCurves, "points", counting)
    view.list.item(5).setCheckState(Qt.CheckState.Unchecked)
    view.list.item(5).setCheckState(Qt.CheckState.Checked)
    view.filter_edit.setText("run")
    view._refresh()
    assert computed == [] and len(view.curves) == 100  # shown and hidden, nothing recomputed
    monkeypatch.setattr(compare_view, "TURN_BUDGET_S", 0.0)  # the least a turn does: CURVES_PER_TURN curves
    view.metric_box.setCurrentIndex(view.metric_box.findData("test_acc"))
    assert len(computed) == compare_view.CURVES_PER_TURN and "more coming" in view.count_label.text()
    qtbot.waitUntil(lambda: len(view.curves) == 100, timeout=10_000)  # the rest in later turns of the event loop
    assert sorted(computed) == sorted(r.log_path for r in view.runs)
    assert all(np.allclose(c.getData()[1], 0.9) for c in view.curves.values())


def test_the_compare_plot_names_its_metric_on_the_vertical_axis_from_the_start(qtbot) -> None:  # noqa: ANN001
    """The left axis had no title (on screen and in exports) until another metric was chosen."""
    from wmstudio.gui.compare_view import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    assert view.plot.getAxis("left").labelText == view.metric_box.currentText() == "trigger accuracy"


def test_a_compare_export_lists_the_runs_as_the_legend_on_screen_does(qtbot) -> None:  # noqa: ANN001
    """The compare plot's legend is filled by hand (its curves have no names): exports had no legend."""
    from wmstudio.gui.export_spec import figure_of

    view = _view(qtbot, _runs(3))
    names = sorted(line.label for line in figure_of(view.plot).panels[0].lines if line.label)
    assert names == sorted(label.text for _, label in view.legend.items) and len(names) == 3


def test_long_run_names_are_shortened_to_their_legend_column_and_kept_whole_in_the_tooltip(qtbot) -> None:  # noqa: ANN001
    """Issue 24: four runs named like sweep cells ran under each other and off the plot's right edge."""
    runs = _runs(4)
    for k, (s, _c) in enumerate(runs):
        s.label = f"CIFAR-10 realistic base: persistence sweep, method certified, seed {k}, sgd lr 0.01"
    view = _view(qtbot, runs)
    labels = [label for _s, label in view.legend.items]
    assert len(labels) == 4
    for (s, _c), label in zip(runs, labels, strict=True):
        assert "…" in label.text and label.toolTip() == s.label
        assert label.text.startswith("CIFAR") and label.text.endswith(s.label[-4:])  # shortened in the middle
    boxes = sorted((label.sceneBoundingRect() for label in labels), key=lambda r: (r.top(), r.left()))
    for a, b in zip(boxes, boxes[1:], strict=False):  # side by side in a row, none over its neighbour
        assert a.top() != b.top() or a.right() <= b.left() + 1
    assert view.legend.sceneBoundingRect().right() <= view.plot.sceneBoundingRect().right() + 1
    wider = view.key.text_px()
    view.resize(1600, 700)  # more room: longer texts once resizing pauses
    qtbot.waitUntil(lambda: view.key.text_px() > wider)
    qtbot.waitUntil(lambda: len(view.legend.items[0][1].text) > len(labels[0].text) or "…" not in view.legend.items[0][1].text)


def test_the_run_list_shortens_long_names_in_the_middle_not_at_the_end(qtbot) -> None:  # noqa: ANN001
    """Four runs of one sweep share a long name: the list cut them all at the same place, before the file name
    that tells them apart (and scrolled sideways)."""
    from PySide6.QtCore import Qt

    runs = _runs(4)
    for s, _c in runs:
        s.label = "CIFAR-10 comparison on the realistic base, a sweep with a long name"
    view = _view(qtbot, runs)
    assert view.list.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert view.list.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert view.list.horizontalScrollBar().maximum() == 0
