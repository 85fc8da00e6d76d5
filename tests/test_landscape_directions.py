"""Landscape directions that do not depend on a random draw (the top Hessian eigenvectors, the attack
and restoration displacements) and Li et al.'s "states" random directions that move the BatchNorm
running statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from tests.conftest import eval_rel
from wmstudio.cli import main
from wmstudio.control import RunControl
from wmstudio.curvature.hvp import LossHVP
from wmstudio.errors import ConfigError
from wmstudio.events import (
    CurvatureFinished,
    CurvatureProgress,
    CurvatureStarted,
    LandscapeFinished,
)
from wmstudio.landscape import LandscapeSpec, compute_landscape, list_landscapes, read
from wmstudio.landscape.context import load_context
from wmstudio.landscape.directions import state_directions
from wmstudio.landscape.flat import ParamVector, float_buffers
from wmstudio.landscape.hessian_axes import top_eigenvectors
from wmstudio.landscape.point_work import points_from_store
from wmstudio.landscape.store import read_vectors
from wmstudio.metrics import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread (conftest.py)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.5, 0.5)
        m[1].running_var.uniform_(0.5, 2.0)
    return m.double().eval()


def exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    named = {n: p.detach() for n, p in model.named_parameters()}
    names = list(named)
    sizes = [named[n].numel() for n in names]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        views = [t.view_as(named[n]) for n, t in zip(names, flat.split(sizes), strict=True)]
        return F.cross_entropy(functional_call(model, dict(zip(names, views, strict=True)), (x,)), y)

    return torch.autograd.functional.hessian(loss, torch.cat([named[n].reshape(-1) for n in names]))


def test_hessian_directions_are_orthonormal_top_eigenvectors_of_the_exact_hessian() -> None:
    model = tiny_cnn()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn((40, 1, 6, 6), generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g)
    h = exact_hessian(model, x, y)
    values, vectors = torch.linalg.eigh(h)
    top = torch.argsort(values, descending=True)[:2]
    assert float(values[top[0]] - values[top[1]]) > 1e-3 * float(values[top[0]])  # distinct: vectors well defined
    axes = top_eigenvectors(model, x, y, k=2, max_iter=h.shape[0], seed=3)
    v = axes.vectors.double()
    assert v.shape == (2, h.shape[0])
    torch.testing.assert_close(v @ v.T, torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0)
    np.testing.assert_allclose(axes.values, values[top].numpy(), rtol=1e-4)
    for i in range(2):  # the same line as the exact eigenvector (the sign is the solver's choice)
        assert abs(float(v[i] @ vectors[:, top[i]])) == pytest.approx(1.0, abs=1e-4)
        assert float(v[i, int(v[i].abs().argmax())]) > 0  # signed: the largest entry positive
    assert axes.converged and model.training is False


def test_hessian_landscape_records_its_eigenvectors_and_centres_on_the_model(demo_copy) -> None:
    spec = LandscapeSpec(kind="hessian", resolution=3, span=0.05, images=100, hessian_images=100, hessian_iter=30,
                         precision="fp32")
    ls = compute_landscape(demo_copy, spec)
    assert ls.status == "finished" and ls.done.shape == (3, 3) and ls.model_names == ["restore"]
    assert ls.attrs["hessian_loss"] == "clean" and ls.attrs["hessian_stage"] == "restore"
    assert ls.attrs["hessian_images"] == 100 and len(ls.attrs["hessian_eigenvalues"]) == 2
    assert "eigenvalue" in ls.attrs["axis_names"][0] and "Hessian-vector products" in ls.attrs["hessian_estimate"]
    d = torch.from_numpy(read_vectors(demo_copy, "hessian")["directions"]).double()
    torch.testing.assert_close(d @ d.T, torch.eye(2, dtype=torch.float64), atol=1e-5, rtol=0)
    # each axis is an eigenvector of the Hessian of the loss it names: H v = lambda v
    ctx = load_context(demo_copy)
    ctx.model.load_state_dict(ctx.state("restore"))
    hvp = LossHVP(ctx.model, ctx.normalizer(ctx.test.images[:100]), ctx.test.labels[:100])
    for k, lam in enumerate(ls.attrs["hessian_eigenvalues"]):
        hv = hvp(d[k].float()).double()
        assert float((hv - lam * d[k]).norm()) < 0.02 * lam
    loss, acc = evaluate(ctx.model, ctx.test.images[:100], ctx.test.labels[:100], ctx.normalizer)
    assert ls.metrics["test_loss"][1, 1] == pytest.approx(loss, rel=eval_rel(1e-5))  # the centre is the model
    assert ls.metrics["test_loss"][0, 0] > ls.metrics["test_loss"][1, 1]  # the sharpest directions climb


def test_hessian_line_of_the_trigger_loss_from_the_cli(demo_copy, capsys) -> None:
    assert main(["landscape", str(demo_copy), "--kind", "hessian_line", "--loss", "trigger", "--center", "embed",
                 "--resolution", "5", "--span", "0.02", "--images", "100", "--hessian-iter", "20",
                 "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "curvature trigger (landscape directions): estimate" in out
    assert "Hessian of the trigger loss at embed: eigenvalues [" in out
    ctx = load_context(demo_copy)
    ls = points_from_store(ctx, demo_copy, "hessian_line")
    assert len(ls) == 5 and list(ls.t) == pytest.approx([-0.02, -0.01, 0.0, 0.01, 0.02])
    stored = read(demo_copy, "hessian_line")
    assert not stored.is_2d and stored.model_names == ["embed"] and stored.attrs["hessian_loss"] == "trigger"
    ctx.model.load_state_dict(ctx.state("embed"))
    loss, _ = evaluate(ctx.model, ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)
    assert stored.metrics["trigger_loss"][2] == pytest.approx(loss, rel=eval_rel(1e-5))


def test_displacement_plane_passes_through_the_stage_models_at_their_coordinates(demo_copy) -> None:
    spec = LandscapeSpec(kind="displacement", resolution=5, margin=0.0, images=200, precision="fp32")
    ls = compute_landscape(demo_copy, spec)
    assert ls.model_names == ["embed", "finetune", "restore"] and ls.spec.center == "finetune"
    assert ls.attrs["displacements"] == [["embed", "finetune"], ["finetune", "restore"]]
    # centred on the fine-tuned model; axes: the attack and restoration displacements, in units of each
    np.testing.assert_allclose(ls.model_coords, [[-1, 0], [0, 0], [0, 1]], atol=1e-5)
    ctx = load_context(demo_copy)
    pv = ParamVector(ctx.model)
    vec = read_vectors(demo_copy, "displacement")
    w = {m: pv.from_state_dict(ctx.state(m)) for m in ls.model_names}
    torch.testing.assert_close(torch.from_numpy(vec["directions"][0]), w["finetune"] - w["embed"])
    torch.testing.assert_close(torch.from_numpy(vec["directions"][1]), w["restore"] - w["finetune"])
    x, y = ls.axes["x"], ls.axes["y"]
    for name, (cx, cy) in zip(ls.model_names, ls.model_coords, strict=True):
        j, i = int(np.argmin(np.abs(x - cx))), int(np.argmin(np.abs(y - cy)))
        assert x[j] == pytest.approx(cx, abs=1e-6) and y[i] == pytest.approx(cy, abs=1e-6)
        ctx.model.load_state_dict(ctx.state(name))
        loss, acc = evaluate(ctx.model, ctx.test.images[:200], ctx.test.labels[:200], ctx.normalizer)
        tloss, _ = evaluate(ctx.model, ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)
        assert ls.metrics["test_loss"][i, j] == pytest.approx(loss, rel=eval_rel(1e-4)), name
        assert ls.metrics["trigger_loss"][i, j] == pytest.approx(tloss, rel=eval_rel(1e-4)), name
        assert ls.metrics["test_acc"][i, j] == pytest.approx(acc, abs=1.5 / 200), name


def test_a_log_without_the_needed_stage_is_refused_naming_it(demo_copy, capsys) -> None:
    with pytest.raises(ConfigError, match=r"needs the stage 'restore' \(the restored model"):
        LandscapeSpec(kind="displacement").resolved(["embed", "finetune"])
    assert main(["landscape", str(demo_copy), "--kind", "displacement", "--models", "embed,finetune,restored"]) == 2
    assert "'restored'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="dir_type"):
        LandscapeSpec(kind="hessian", dir_type="states").check()
    from wmstudio.gui.controller import landscape_kinds

    reasons = landscape_kinds(["embed", "finetune"])
    assert "'restore'" in reasons["displacement"] and not reasons["hessian"] and not reasons["hessian_line"]


def test_states_directions_move_the_running_statistics_and_weights_do_not(demo_copy) -> None:
    common = dict(kind="random", resolution=3, span=0.4, images=150, seed=4, precision="fp32")
    states = compute_landscape(demo_copy, LandscapeSpec(name="states", dir_type="states", **common))
    weights = compute_landscape(demo_copy, LandscapeSpec(name="weights", **common))
    assert states.attrs["dir_type"] == "states" and "Li et al." in states.attrs["buffers"]
    assert weights.attrs["dir_type"] == "weights" and weights.attrs["buffers"] == "fixed: restore"
    ctx = load_context(demo_copy)
    centre = {k: v.float() for k, v in ctx.state("restore").items() if k in float_buffers(ctx.model)}
    assert any("running_var" in k for k in centre)
    pts_s, pts_w = points_from_store(ctx, demo_copy, "states"), points_from_store(ctx, demo_copy, "weights")
    corner = 8  # (x, y) = (0.4, 0.4): the statistics scaled by 1 + 0.8
    for k, v in pts_s.stats(corner).items():
        torch.testing.assert_close(v, centre[k] * 1.8, rtol=1e-5, atol=1e-6)
    for k, v in pts_w.stats(corner).items():
        torch.testing.assert_close(v, centre[k], rtol=0, atol=0)
    for k, v in pts_s.stats(4).items():  # the centre keeps the model's own statistics
        torch.testing.assert_close(v, centre[k], rtol=1e-6, atol=1e-7)
    # the same weights at every point; the states surface differs only off the centre
    assert states.metrics["test_loss"][1, 1] == pytest.approx(weights.metrics["test_loss"][1, 1], rel=1e-6)
    assert abs(states.metrics["test_loss"][2, 2] - weights.metrics["test_loss"][2, 2]) > 1e-3
    # the stored value at the corner is the model with those parameters and statistics
    d = read_vectors(demo_copy, "states")["directions"]
    pv = ParamVector(ctx.model)
    ctx.model.load_state_dict({**ctx.state("restore"), **{k: v * 1.8 for k, v in centre.items()}})
    pv.set_(pv.get() + 0.4 * torch.from_numpy(d[0] + d[1]))
    loss, _ = evaluate(ctx.model, ctx.test.images[:150], ctx.test.labels[:150], ctx.normalizer)
    assert states.metrics["test_loss"][2, 2] == pytest.approx(loss, rel=eval_rel(1e-5))


def test_state_directions_follow_li_et_al_for_one_dimensional_entries() -> None:
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([1.5, 0.2, 3.0]))
    d = state_directions(float_buffers(bn), seed=0)
    assert set(d) == {"running_mean", "running_var"}
    torch.testing.assert_close(d["running_mean"], bn.running_mean)
    torch.testing.assert_close(d["running_var"], bn.running_var)


def test_the_app_offers_the_new_kinds_and_disables_displacement_without_a_restore_stage(qtbot) -> None:
    from PySide6.QtCore import Qt

    from wmstudio.gui.controller import landscape_kinds
    from wmstudio.gui.landscape_view import LandscapeView

    lv = LandscapeView()
    qtbot.addWidget(lv)
    kinds = [lv.kind.itemText(i) for i in range(lv.kind.count())]
    assert {"hessian", "hessian_line", "displacement"} <= set(kinds)
    lv.kind.setCurrentText("displacement")
    lv.set_kind_reasons(landscape_kinds(["embed", "finetune"]))
    i = lv.kind.findText("displacement")
    assert not lv.kind.model().item(i).isEnabled()
    assert "'restore'" in lv.kind.itemData(i, Qt.ItemDataRole.ToolTipRole)
    assert lv.kind.model().item(lv.kind.findText("hessian")).isEnabled()
    lv.kind.setCurrentText("hessian")
    assert lv.spec().kind == "hessian"  # the form asks for the kind chosen


def test_a_cancel_while_finding_the_eigenvectors_ends_the_job_and_stores_nothing(demo_copy) -> None:
    control = RunControl()
    events: list = []

    def cancel_in_lanczos(e: object) -> None:
        events.append(e)
        if isinstance(e, CurvatureProgress):
            control.cancel()

    spec = LandscapeSpec(kind="hessian", resolution=3, images=100, hessian_images=50)
    ls = compute_landscape(demo_copy, spec, cancel_in_lanczos, control)
    assert ls.status == "cancelled" and not ls.done.size and "hessian" not in list_landscapes(demo_copy)
    assert isinstance(events[0], CurvatureStarted) and events[0].products == spec.hessian_iter  # the estimate first
    assert [e.status for e in events if isinstance(e, (CurvatureFinished, LandscapeFinished))] == ["cancelled"] * 2
