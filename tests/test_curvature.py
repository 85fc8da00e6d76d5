"""Curvature (wmstudio.curvature): Hessian-vector products, top eigenvalues, trace and density,
checked against the exact Hessian of models small enough to form it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from wmstudio.curvature.eigen import top_eigenvalues
from wmstudio.curvature.hvp import LossHVP
from wmstudio.curvature.trace import density, exact_trace, hutchinson

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread (conftest.py)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        m[1].running_mean.uniform_(-0.5, 0.5)
        m[1].running_var.uniform_(0.5, 2.0)
    return m.double().eval()


def tiny_mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(10, 12), nn.Tanh(), nn.Linear(12, 4)).double().eval()


def data(shape: tuple[int, ...], classes: int, n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.randn((n, *shape), generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, prefix: str = "") -> torch.Tensor:
    named = {n: p.detach() for n, p in model.named_parameters() if n == prefix or n.startswith(prefix)}
    names = list(named)
    sizes = [named[n].numel() for n in names]
    flat0 = torch.cat([named[n].reshape(-1) for n in names])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        views = [t.view_as(named[n]) for n, t in zip(names, flat.split(sizes), strict=True)]
        params = dict(zip(names, views, strict=True))
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(loss, flat0)


CASES = [(tiny_cnn, (1, 6, 6), 3, ""), (tiny_mlp, (10,), 4, ""), (tiny_cnn, (1, 6, 6), 3, "4")]


@pytest.mark.parametrize(("make", "shape", "classes", "layer"), CASES)
def test_hvp_matches_the_exact_hessian(make, shape, classes, layer) -> None:
    model = make()
    x, y = data(shape, classes)
    h = exact_hessian(model, x, y, layer)
    v = torch.randn(h.shape[0], dtype=torch.float64)
    for keep in (False, True):
        hvp = LossHVP(model, x, y, layer=layer, batch_size=15, keep_graph=keep)  # 3 batches of unequal size
        assert hvp.dim == h.shape[0]
        torch.testing.assert_close(hvp(v), h @ v, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(hvp(2 * v), h @ (2 * v), rtol=1e-9, atol=1e-11)  # a kept graph is reused
    assert model.training is False


@pytest.mark.parametrize(("make", "shape", "classes", "layer"), CASES)
def test_top_eigenvalues_match_the_exact_hessian(make, shape, classes, layer) -> None:
    model = make()
    x, y = data(shape, classes)
    h = exact_hessian(model, x, y, layer)
    exact = np.sort(np.linalg.eigvalsh(h.numpy()))[::-1]
    hvp = LossHVP(model, x, y, layer=layer, keep_graph=True)
    eig = top_eigenvalues(hvp, hvp.dim, k=3, max_iter=hvp.dim, tol=1e-8)
    assert eig.converged
    np.testing.assert_allclose(eig.values, exact[:3], rtol=1e-4)
    assert hvp.count == eig.iterations < hvp.dim or layer  # converged before the whole space was spanned


def test_trace_exact_and_hutchinson() -> None:
    model = tiny_cnn()
    x, y = data((1, 6, 6), 3)
    h = exact_hessian(model, x, y)
    hvp = LossHVP(model, x, y, keep_graph=True)
    exact = exact_trace(hvp, hvp.dim)
    assert exact.value == pytest.approx(float(torch.trace(h)), rel=1e-9)
    est = hutchinson(hvp, hvp.dim, probes=200, seed=3)
    # the Rademacher estimator's variance is 2 * sum of squared off-diagonal entries, per probe
    off = h - torch.diag(torch.diag(h))
    sd = float(torch.sqrt(2 * (off**2).sum() / 200))
    assert abs(est.value - exact.value) < 4 * sd
    assert est.stderr == pytest.approx(sd, rel=0.25)


def test_density_weights_and_moments() -> None:
    model = tiny_mlp()
    x, y = data((10,), 4)
    h = exact_hessian(model, x, y)
    hvp = LossHVP(model, x, y, keep_graph=True)
    d = density(hvp, hvp.dim, probes=10, steps=40, seed=4)
    np.testing.assert_allclose(np.nansum(d.weights, 1), 1.0, rtol=1e-9)
    # SLQ is exact for polynomials of low degree: the mean node (weighted) estimates tr(H) / dim
    est = float(np.mean(np.nansum(d.weights * np.nan_to_num(d.nodes), 1)))
    assert est == pytest.approx(float(torch.trace(h)) / hvp.dim, rel=0.2)
    grid = np.linspace(np.nanmin(d.nodes) - 1, np.nanmax(d.nodes) + 1, 4001)
    assert np.trapezoid(d.on_grid(grid, 0.05), grid) == pytest.approx(1.0, rel=1e-3)


def test_cli_prints_the_estimate_and_stores_the_result(demo_copy, capsys) -> None:
    from wmstudio.cli import main
    from wmstudio.curvature import job
    from wmstudio.landscape.context import load_context

    ctx = load_context(demo_copy, "cpu")
    layer = [n for n, _ in ctx.model.named_parameters()][-1].rsplit(".", 1)[0]  # the classifier
    args = ["curvature", str(demo_copy), "--stage", "embed", "--images", "200", "--probes", "5", "--tol", "1e-8"]
    assert main([*args, "--loss", "trigger", "--layer", layer, "--top-k", "2", "--max-iter", "400"]) == 0
    assert main([*args, "--loss", "clean", "--density", "2", "--density-steps", "10", "--max-iter", "30"]) == 0
    out = capsys.readouterr().out
    assert f"curvature embed trigger@{layer}: estimate: at most" in out and "Hessian-vector products" in out
    assert "top eigenvalues [" in out
    held = job.read(demo_copy)["embed"]
    assert set(held) == {f"trigger@{layer}", "clean"}
    r = held[f"trigger@{layer}"]
    assert r["estimate"]["products"] >= r["products"] > 0 and r["estimate"]["seconds"] > 0
    assert r["images"] == 100 and len(r["eigenvalues"]) == 2 and "density_nodes" not in r
    assert len(held["clean"]["density_nodes"]) == 2 and held["clean"]["images"] == 200
    # the classifier's Hessian of the trigger loss, formed exactly, has the stored top eigenvalues
    model = ctx.model.double()
    model.load_state_dict(ctx.state("embed"))
    x, y = job.loss_inputs(ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)
    h = exact_hessian(model, x.double(), y, layer + ".")
    exact = np.sort(np.linalg.eigvalsh(h.numpy()))[::-1][:2]
    np.testing.assert_allclose(r["eigenvalues"], exact, rtol=1e-4)
    assert main(["inspect", str(demo_copy)]) == 0
    assert f"curvature trigger@{layer}: top eigenvalues [" in capsys.readouterr().out
    assert main([*args, "--loss", "clean", "--layer", "nope"]) == 2
    assert "no trainable parameters under 'nope'" in capsys.readouterr().err
    assert main([*args, "--stage", "nope"]) == 2


def test_stage_ends_record_curvature_and_a_cancel_stops_it(tmp_path) -> None:
    from conftest import quick_config

    from wmstudio.config_io import load_config
    from wmstudio.control import RunControl
    from wmstudio.curvature import job
    from wmstudio.events import CurvatureProgress, CurvatureStarted
    from wmstudio.pipeline import run_experiment

    cfg = load_config(data=quick_config(run={"curvature": "stage_ends", "curvature_probes": 2, "curvature_images": 50,
                                             "record_trajectory": False}, model={"options": {"width": 4}},
                                        trigger={"size": 20}, embed={"epochs": 1}, finetune={"epochs": 1}))
    events = []
    run_experiment(cfg, tmp_path / "a.h5", events.append, stages=["embed", "finetune"])
    held = job.read(tmp_path / "a.h5")
    assert set(held) == {"embed", "finetune"}
    assert all(set(v) == {"clean", "trigger"} and v["trigger"]["trace_probes"] == 2 for v in held.values())
    assert held["embed"]["clean"]["images"] == 50 and held["embed"]["trigger"]["images"] == 20
    assert sum(isinstance(e, CurvatureStarted) for e in events) == 4

    control = RunControl()

    def cancel_in_curvature(e: object) -> None:
        if isinstance(e, CurvatureProgress):
            control.cancel()

    result = run_experiment(cfg, tmp_path / "b.h5", cancel_in_curvature, control, stages=["embed", "finetune"])
    assert result.status == "cancelled"
    assert job.read(tmp_path / "b.h5") == {}
