"""Connecting curves (Garipov et al.): a quadratic Bezier curve with one trained bend between two
stage models, evaluated with BatchNorm statistics re-estimated at each point, next to the straight
segment between the same models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import eval_rel
from wmstudio.cli import main
from wmstudio.control import RunControl
from wmstudio.errors import ConfigError
from wmstudio.events import (
    CurveTrainingProgress,
    CurveTrainingStarted,
    LandscapeFinished,
    LandscapePoints,
)
from wmstudio.landscape import LandscapeSpec, compute_landscape, list_landscapes, read
from wmstudio.landscape.context import load_context
from wmstudio.landscape.curve import CurvePoints, bezier
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.point_work import make_evaluator, points_from_store
from wmstudio.landscape.spec import METRICS
from wmstudio.landscape.store import read_vectors

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread (conftest.py)

QUICK = {"kind": "curve", "resolution": 5, "curve_epochs": 1, "images": 200, "bn_batches": 1, "batch_size": 256}


def test_bezier_is_the_ends_at_0_and_1_and_the_segment_with_the_midpoint_as_bend() -> None:
    g = torch.Generator().manual_seed(0)
    w0, w1, bend = (torch.randn(50, generator=g) for _ in range(3))
    assert torch.equal(bezier(w0, bend, w1, 0.0), w0) and torch.equal(bezier(w0, bend, w1, 1.0), w1)
    for t in (0.25, 0.5, 0.8):
        torch.testing.assert_close(bezier(w0, (w0 + w1) / 2, w1, t), (1 - t) * w0 + t * w1)
        torch.testing.assert_close(bezier(w0, bend, w1, t), (1 - t) ** 2 * w0 + 2 * t * (1 - t) * bend + t * t * w1)


def test_curve_ends_are_the_stage_models_and_everything_stored_reads_back(demo_copy) -> None:
    ls = compute_landscape(demo_copy, LandscapeSpec(**QUICK))
    assert ls.kind == "curve" and ls.status == "finished" and ls.complete and not ls.is_2d
    assert ls.spec.models == ["embed", "finetune"] and ls.spec.bn == "recompute" and ls.model_names == ["embed", "finetune"]
    np.testing.assert_array_equal(ls.axes["t"], np.linspace(0, 1, 5))
    np.testing.assert_array_equal(ls.model_coords, [0.0, 1.0])
    assert set(ls.line_metrics) == set(METRICS) and all(np.isfinite(ls.line_metrics[m]).all() for m in METRICS)
    assert len(ls.attrs["curve_loss_history"]) == 1 and ls.attrs["curve_steps"] >= 1 and ls.attrs["curve_estimate"]
    ctx = load_context(demo_copy, "cpu")
    pv = ParamVector(ctx.model)
    w0, w1 = (pv.from_state_dict(ctx.state(m)) for m in ("embed", "finetune"))
    bend = torch.from_numpy(read_vectors(demo_copy, "curve")["bend"])
    assert bend.shape == w0.shape and float((bend - (w0 + w1) / 2).norm()) > 0  # trained: off the midpoint
    points = points_from_store(ctx, demo_copy, "curve")
    assert isinstance(points, CurvePoints)
    buf = torch.empty(pv.numel)
    assert torch.equal(points.params(0, buf), w0) and torch.equal(points.params(4, buf), w1)
    ev = make_evaluator(ctx, ls.spec)
    for k, w in ((0, w0), (4, w1)):  # the ends: the stage models, their statistics re-estimated the same way
        own = ev.evaluate(w.clone())
        for m in METRICS:
            assert ls.metrics[m][k] == pytest.approx(own[m], rel=eval_rel(1e-6), abs=1e-9)
            assert ls.line_metrics[m][k] == ls.metrics[m][k]  # the curve and the segment share their ends
    assert not np.array_equal(ls.metrics["test_loss"][1:4], ls.line_metrics["test_loss"][1:4])


def test_training_the_bend_lowers_the_loss_along_the_curve_below_the_straight_line(demo_copy) -> None:
    spec = LandscapeSpec(kind="curve", models=["embed", "restore"], resolution=5, curve_epochs=3, curve_lr=0.02,
                         data="owner", images=400, bn_batches=1, batch_size=256)
    ls = compute_landscape(demo_copy, spec)
    curve, line = ls.metrics["test_loss"][1:-1], ls.line_metrics["test_loss"][1:-1]
    # the demo: about 0.77 of the line's mean (an untrained bend, lr 1e-9: 1.0000002); the ends are shared
    assert curve.mean() < 0.9 * line.mean() and curve.max() < line.max()
    history = ls.attrs["curve_loss_history"]
    assert history[-1] < history[0]


def test_a_cancel_while_training_the_bend_stores_nothing_and_a_rerun_computes_it(demo_copy) -> None:
    control = RunControl()
    events: list = []

    def cancel_in_training(e: object) -> None:
        events.append(e)
        if isinstance(e, CurveTrainingProgress):
            control.cancel()

    spec = LandscapeSpec(**(QUICK | {"curve_epochs": 2}))
    ls = compute_landscape(demo_copy, spec, cancel_in_training, control)
    assert ls.status == "cancelled" and "curve" not in list_landscapes(demo_copy)
    assert isinstance(events[0], CurveTrainingStarted) and events[0].seconds > 0  # the estimate first
    assert events[0].steps >= 2 and events[0].steps % 2 == 0  # two epochs
    finished = [e for e in events if isinstance(e, LandscapeFinished)]
    assert [e.status for e in finished] == ["cancelled"] and "nothing stored" in finished[0].message
    again: list = []
    ls = compute_landscape(demo_copy, spec, again.append)
    assert ls.status == "finished" and ls.complete
    points = [e for e in again if isinstance(e, LandscapePoints)]
    assert points and "line_test_loss" in points[0].values  # the app hears the straight segment too


def test_curve_settings_are_checked_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="models: kind=curve connects exactly 2"):
        LandscapeSpec(kind="curve", models=["embed"]).resolved(["embed", "finetune"])
    with pytest.raises(ConfigError, match="'finetune'"):
        LandscapeSpec(kind="curve").resolved(["embed"])
    with pytest.raises(ConfigError, match="curve_epochs"):
        LandscapeSpec(kind="curve", curve_epochs=0).check()
    s = LandscapeSpec(kind="curve").resolved(["embed", "attack", "restore"])
    assert s.models == ["embed", "attack"]


def test_curve_from_the_cli_prints_the_curve_beside_the_straight_line(demo_copy, capsys) -> None:
    import torch

    before = torch.get_num_threads()
    assert main(["landscape", str(demo_copy), "--kind", "curve", "--threads", "-1"]) == 2
    assert "--threads" in capsys.readouterr().err  # refused, naming the option
    try:
        rc = main(["landscape", str(demo_copy), "--kind", "curve", "--models", "finetune,restore", "--resolution", "3",
                   "--curve-epochs", "1", "--images", "100", "--batch-size", "256", "--threads", "1"])
        assert torch.get_num_threads() == 1  # the curve trained and evaluated on the threads asked for
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert rc == 0
    assert "training the curve's bend: estimate:" in out and "bend:" in out
    assert "test_loss: curve mean" in out and "straight line mean" in out
    ls = read(demo_copy, "curve")
    assert ls.spec.models == ["finetune", "restore"]
    from wmstudio.landscape.figures import LABELS, _line_figure, _pyplot

    plt = _pyplot()
    fig = _line_figure(plt, ls, "test_loss", False)  # an exported figure draws the straight line too, dashed
    dashed = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines}
    plt.close(fig)
    assert dashed.get(f"{LABELS['test_loss']}, straight line") == "--"
    assert dashed.get(f"{LABELS['trigger_loss']}, straight line") == "--"


def test_the_app_draws_the_curve_and_the_straight_line_and_offers_the_kind(demo_copy, qtbot) -> None:
    from PySide6.QtCore import Qt

    from wmstudio.gui.controller import landscape_kinds
    from wmstudio.gui.landscape_view import LandscapeView

    lv = LandscapeView()
    qtbot.addWidget(lv)
    lv.set_kind_reasons(landscape_kinds(["embed"]))
    i = lv.kind.findText("curve")
    assert i >= 0 and not lv.kind.model().item(i).isEnabled()
    assert "'finetune'" in lv.kind.itemData(i, Qt.ItemDataRole.ToolTipRole)
    compute_landscape(demo_copy, LandscapeSpec(**(QUICK | {"resolution": 3})))
    compute_landscape(demo_copy, LandscapeSpec(kind="line", resolution=3, images=100, batch_size=256))
    lv.show_landscape(read(demo_copy, "curve"))
    assert lv.tabs.currentIndex() == 2
    for m in ("test_loss", "trigger_acc"):
        x, y = lv.path_curves[m].getData()
        assert len(x) == 3 and np.array_equal(y, read(demo_copy, "curve").metrics[m])
        x, y = lv.straight_curves[m].getData()
        assert len(x) == 3 and np.array_equal(y, read(demo_copy, "curve").line_metrics[m])
    names = [lab.text for _, lab in lv.path_loss.legend.items]
    assert "clean loss, straight line" in names and "clean loss, curve" in names
    lv.show_landscape(read(demo_copy, "line"))  # a plain path: no straight-line companion drawn
    assert not lv.straight_curves
    names = [lab.text for _, lab in lv.path_loss.legend.items]
    assert "clean loss, straight line" not in names and "clean loss" in names


def test_progress_words_for_the_bend_training() -> None:
    from wmstudio.progress import ProgressTracker

    clock = [0.0]
    tracker = ProgressTracker(lambda: clock[0])
    line = tracker.update(CurveTrainingStarted("curve", 16, 0.5, 8.0, 1 << 20))
    assert line is not None and "training the curve's bend: estimate: 16 steps x 0.5 s = 00:08" in line
    clock[0] = 2.0
    assert tracker.update(CurveTrainingProgress("curve", 1, 4, 16, 0.25)) is None
    status = tracker.status_line()
    assert "landscape curve · training the curve's bend · epoch 1 · step 4/16 · loss 0.250" in status
    assert tracker.state.fraction == 0.25
