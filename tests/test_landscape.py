from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import eval_rel
from wmstudio.cli import main
from wmstudio.control import RunControl
from wmstudio.errors import ConfigError, RunLogError
from wmstudio.events import LandscapeFinished, LandscapePoints, LandscapeStarted
from wmstudio.landscape import LandscapeSpec, compute_landscape, list_landscapes, read
from wmstudio.landscape.context import load_context
from wmstudio.landscape.directions import pca_plane, plane_through, random_direction
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.fold import fold_batchnorm
from wmstudio.landscape.grid import fill_nearest, refinement_levels
from wmstudio.landscape.store import read_vectors
from wmstudio.metrics import evaluate
from wmstudio.models import build_model


def test_filter_normalisation_matches_each_weight_filter() -> None:
    model = build_model("resnet20", 3, 10, 32, {}, "", "")
    pv = ParamVector(model)
    w = pv.get()
    d = random_direction(pv, w, seed=3, norm="filter", bias_bn="ignore")
    checked = 0
    for _, s, shape in pv.slices():
        if len(shape) <= 1:
            assert torch.count_nonzero(d[s]) == 0  # biases and BatchNorm left out
            continue
        dn = d[s].view(shape[0], -1).norm(dim=1)
        wn = w[s].view(shape[0], -1).norm(dim=1)
        torch.testing.assert_close(dn, wn, rtol=1e-5, atol=1e-7)
        checked += 1
    assert checked == 20  # 19 convolutions and the classifier
    inc = random_direction(pv, w, seed=3, norm="filter", bias_bn="include")
    for _, s, shape in pv.slices():
        if len(shape) == 1 and w[s].norm() > 0:
            assert inc[s].norm() == pytest.approx(float(w[s].norm()), rel=1e-5)
    assert torch.equal(d, random_direction(pv, w, seed=3))  # seeded: reproducible
    assert not torch.equal(d, random_direction(pv, w, seed=4))


def test_plane_axes_are_orthonormal_and_models_land_at_their_coordinates() -> None:
    g = torch.Generator().manual_seed(0)
    w0, w1, w2 = (torch.randn(5000, generator=g) for _ in range(3))
    plane = plane_through(w0, w1, w2)
    u, v = plane.u.double(), plane.v.double()
    assert float(u @ u) == pytest.approx(1, abs=1e-6) and float(v @ v) == pytest.approx(1, abs=1e-6)
    assert abs(float(u @ v)) < 1e-6
    coords = [plane.project(w) for w in (w0, w1, w2)]
    assert coords[0][:2] == pytest.approx((0, 0), abs=1e-5)
    assert coords[1][:2] == pytest.approx((float((w1 - w0).norm()), 0), rel=1e-5, abs=1e-5)
    for (x, y, residual), w in zip(coords, (w0, w1, w2), strict=True):
        assert residual < 1e-3
        torch.testing.assert_close(plane.point(x, y), w, rtol=1e-4, atol=1e-4)
    # distances in the plane are true parameter-space distances
    (x1, y1, _), (x2, y2, _) = coords[1], coords[2]
    assert np.hypot(x2 - x1, y2 - y1) == pytest.approx(float((w2 - w1).norm()), rel=1e-5)
    with pytest.raises(ValueError, match="one line"):
        plane_through(w0, w1, w0 + 2 * (w1 - w0))


def test_pca_plane_recovers_the_span_of_a_planar_path() -> None:
    g = torch.Generator().manual_seed(1)
    center, a, b = torch.randn(3, 2000, generator=g)
    pts = torch.stack([center + s * a + t * b for s, t in [(1, 0), (0.5, 0.5), (0, 1), (2, 1), (-1, 0.3)]])
    plane, explained = pca_plane(pts, center)
    assert sum(explained) == pytest.approx(1.0, abs=1e-6)
    for p in pts:
        assert plane.project(p)[2] < 1e-3  # every point lies in the plane


def test_refinement_levels_cover_every_point_once_coarse_first() -> None:
    levels = refinement_levels(41, 41, coarse=11)
    allidx = np.concatenate(levels)
    assert len(allidx) == 41 * 41 and len(np.unique(allidx)) == 41 * 41
    assert len(levels[0]) == 11 * 11  # an 11x11 preview first, then 21x21 in all, then 41x41
    assert len(levels[0]) + len(levels[1]) == 21 * 21 and len(levels) == 3
    assert len(refinement_levels(41, 41, coarse=21)[0]) == 21 * 21
    corners = {0, 40, 40 * 41, 41 * 41 - 1}
    assert corners <= set(levels[0].tolist())
    values = np.full((5, 5), np.nan)
    done = np.zeros((5, 5), bool)
    values[0, 0], done[0, 0], values[4, 4], done[4, 4] = 1.0, True, 2.0, True
    filled = fill_nearest(values, done)
    assert filled[1, 0] == 1.0 and filled[3, 4] == 2.0 and not np.isnan(filled).any()


def test_batchnorm_folding_keeps_the_outputs() -> None:
    torch.manual_seed(0)
    model = build_model("resnet20", 3, 10, 32, {}, "", "")
    for m in model.modules():  # non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    model.eval()
    folded = fold_batchnorm(model)
    assert folded is not None and len(folded.pairs) == 19
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded.module(x), model(x), rtol=1e-4, atol=1e-4)
        model.conv1.weight.mul_(1.1)  # perturb the original; refold follows it
        folded.refold()
        torch.testing.assert_close(folded.module(x), model(x), rtol=1e-4, atol=1e-4)


def test_surface_equals_direct_evaluation_and_origin_is_the_model(demo_copy) -> None:
    spec = LandscapeSpec(kind="random", resolution=9, span=0.6, images=300, seed=5, precision="fp32")
    ls = compute_landscape(demo_copy, spec)
    assert ls.status == "finished" and ls.complete and ls.done.shape == (9, 9)
    assert ls.attrs["bn_stats"] == "running" and ls.attrs["buffers"] == "fixed: restore"
    ctx = load_context(demo_copy)
    state = ctx.state("restore")
    vec = read_vectors(demo_copy, "random")
    d1, d2 = (torch.from_numpy(v) for v in vec["directions"])
    pv = ParamVector(ctx.model)
    imgs, labels = ctx.test.images[:300], ctx.test.labels[:300]

    def direct(a: float, b: float) -> tuple[float, float, float, float]:
        fresh = build_model("small_cnn", 1, 10, 8, {"width": 16}, "", "")
        sd = {k: v.clone() for k, v in state.items()}
        for name, s, shape in pv.slices():
            sd[name] = state[name] + (a * d1[s] + b * d2[s]).view(shape)
        fresh.load_state_dict(sd)
        return (*evaluate(fresh, imgs, labels, ctx.normalizer),
                *evaluate(fresh, ctx.trigger_images, ctx.trigger_labels, ctx.normalizer))

    # the origin (centre of an odd grid) is the model itself
    origin = direct(0.0, 0.0)
    assert ls.metrics["test_loss"][4, 4] == pytest.approx(origin[0], rel=eval_rel(1e-5))
    assert ls.metrics["trigger_acc"][4, 4] == pytest.approx(origin[3])
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 9, size=(5, 2)):
        expect = direct(float(ls.axes["x"][j]), float(ls.axes["y"][i]))
        got = [ls.metrics[m][i, j] for m in ("test_loss", "test_acc", "trigger_loss", "trigger_acc")]
        assert got[0] == pytest.approx(expect[0], rel=eval_rel(1e-5))
        assert got[2] == pytest.approx(expect[2], rel=eval_rel(1e-5))
        assert abs(got[1] - expect[1]) <= 1 / 300 and abs(got[3] - expect[3]) <= 1 / 100


def test_plane_surface_models_and_trajectories(demo_copy) -> None:
    events: list = []
    ls = compute_landscape(demo_copy, LandscapeSpec(kind="plane", resolution=7), events.append)
    assert ls.model_names == ["embed", "finetune", "restore"]
    assert ls.model_coords[0] == pytest.approx([0, 0], abs=1e-6) and abs(ls.model_coords[1][1]) < 1e-5
    # the last trajectory row of each stage is that stage's model: its projection is exact
    for k, stage in enumerate(ls.model_names):
        tr = ls.trajectories[stage]
        assert tr["xy"][-1] == pytest.approx(ls.model_coords[k], abs=1e-4)
        assert tr["residual"][-1] < 1e-3 * max(1.0, float(np.abs(ls.model_coords).max()))
        assert len(tr["global_step"]) == len(tr["xy"])
    assert ls.attrs["axis_units"].startswith("parameter-space distance")
    x, y = ls.axes["x"], ls.axes["y"]
    assert x[-1] - x[0] == pytest.approx(y[-1] - y[0])  # square box: true aspect
    assert isinstance(events[0], LandscapeStarted) and isinstance(events[-1], LandscapeFinished)
    pts = [e for e in events if isinstance(e, LandscapePoints)]
    assert pts[-1].done == 49 and sum(len(e.indices) for e in pts) == 49
    assert pts[0].level == 0
    # BatchNorm statistics are interpolated, so the line through the checkpoints hits each exactly
    line = compute_landscape(demo_copy, LandscapeSpec(kind="line", resolution=4, margin=0.0, images=0,
                                                        precision="fp32"))
    ctx = load_context(demo_copy)
    for name, pos in zip(line.model_names, line.model_coords, strict=True):
        k = int(np.argmin(np.abs(line.axes["t"] - pos)))
        ctx.model.load_state_dict(ctx.state(name))
        loss, acc = evaluate(ctx.model, ctx.test.images, ctx.test.labels, ctx.normalizer)
        assert line.metrics["test_loss"][k] == pytest.approx(loss, rel=eval_rel(1e-4))
        assert line.metrics["test_acc"][k] == pytest.approx(acc, abs=1.5 / len(ctx.test))


def test_interrupted_surface_resumes_to_the_same_values(demo_copy) -> None:
    spec = dict(kind="random", resolution=9, images=200, seed=2)
    full = compute_landscape(demo_copy, LandscapeSpec(name="full", **spec))
    control = RunControl()

    def stop_half_way(e: object) -> None:
        if isinstance(e, LandscapePoints) and e.done >= 40:
            control.cancel()

    part = compute_landscape(demo_copy, LandscapeSpec(name="part", **spec), stop_half_way, control)
    assert part.status == "cancelled" and 40 <= part.done.sum() < 81
    assert np.isnan(part.metrics["test_loss"][~part.done]).all()
    stored = read(demo_copy, "part")  # a partial surface is a valid, readable one
    assert stored.done.sum() == part.done.sum()
    events: list = []
    resumed = compute_landscape(demo_copy, LandscapeSpec(name="part", **spec), events.append)
    assert events[0].done == part.done.sum()  # resumed, not restarted
    assert resumed.status == "finished" and resumed.complete
    for m in full.metrics:
        np.testing.assert_allclose(resumed.metrics[m], full.metrics[m], rtol=1e-6)
    with pytest.raises(RunLogError, match="other settings"):
        compute_landscape(demo_copy, LandscapeSpec(name="part", kind="random", resolution=5))


def test_worker_processes_give_the_same_surface(demo_copy) -> None:
    spec = dict(kind="plane", resolution=5, images=200, precision="fp32")
    one = compute_landscape(demo_copy, LandscapeSpec(name="one", **spec))
    two = compute_landscape(demo_copy, LandscapeSpec(name="two", **spec), workers=2)
    assert two.complete
    for m in one.metrics:
        np.testing.assert_allclose(two.metrics[m], one.metrics[m], rtol=1e-5)


def test_pca_and_recomputed_batchnorm(demo_copy) -> None:
    ls = compute_landscape(demo_copy, LandscapeSpec(kind="pca", resolution=5, images=200))
    ev = ls.attrs["explained_variance"]
    assert len(ev) == 2 and ls.model_coords[-1] == pytest.approx([0, 0], abs=1e-6)  # centred on the restored model
    bn = compute_landscape(demo_copy, LandscapeSpec(kind="random", name="bn", resolution=3, images=200, bn="recompute"))
    assert bn.attrs["bn_stats"] == "recompute" and np.isfinite(bn.metrics["test_loss"]).all()
    assert sorted(list_landscapes(demo_copy)) == ["bn", "pca"]


def test_bad_landscape_settings_name_the_field(demo_copy) -> None:
    with pytest.raises(ConfigError, match="resolution"):
        compute_landscape(demo_copy, LandscapeSpec(kind="random", resolution=1))
    with pytest.raises(ConfigError, match="models"):
        compute_landscape(demo_copy, LandscapeSpec(kind="plane", models=["embed", "nope", "restore"]))
    with pytest.raises(ConfigError, match="kind"):
        compute_landscape(demo_copy, LandscapeSpec(kind="sphere"))


def test_cli_computes_and_exports_figures(demo_copy, tmp_path, capsys) -> None:
    assert main(["landscape", str(demo_copy), "--kind", "plane", "--resolution", "5", "--images", "100", "-q"]) == 0
    assert main(["landscape", str(demo_copy), "--kind", "line", "--resolution", "3", "-q"]) == 0
    out = tmp_path / "figs"
    assert main(["export", str(demo_copy), "-o", str(out), "-m", "trigger_loss", "--style", "both"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert "plane_trigger_loss_contour.png" in files and "plane_trigger_loss_surface.svg" in files
    assert "line_trigger_loss_line.png" in files
    png = (out / "plane_trigger_loss_contour.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (out / "plane_trigger_loss_contour.svg").read_text().lstrip().startswith("<?xml")
    assert main(["export", str(demo_copy), "-o", str(out), "-l", "nope"]) == 2
    assert "no landscape 'nope'" in capsys.readouterr().err


def test_ray_actors_give_the_same_surface(demo_copy) -> None:
    pytest.importorskip("ray")
    spec = dict(kind="random", resolution=5, images=150, seed=3, precision="fp32")
    one = compute_landscape(demo_copy, LandscapeSpec(name="one", **spec))
    ray = compute_landscape(demo_copy, LandscapeSpec(name="ray", **spec), workers=2, ray_address="")
    assert ray.complete
    for m in one.metrics:
        np.testing.assert_allclose(ray.metrics[m], one.metrics[m], rtol=1e-5)


def test_axis_labels_name_the_directions_with_their_units_and_the_pca_variance(tmp_path) -> None:
    from wmstudio.landscape.figures import axis_labels, export_figure
    from wmstudio.landscape.spec import METRICS
    from wmstudio.landscape.store import Landscape

    x = y = np.linspace(-1, 1, 5)
    metrics = {m: x[None, :] ** 2 + y[:, None] ** 2 for m in METRICS}
    attrs = {"axis_units": "parameter-space distance (orthonormal axes)", "explained_variance": [0.6, 0.25]}
    ls = Landscape("p", "pca", "finished", LandscapeSpec(kind="pca"), attrs, metrics, np.ones((5, 5), bool),
                   {"x": x, "y": y}, ["restore"], np.zeros((1, 2)))
    assert axis_labels(ls) == ("PC 1 (60.0% of variance): parameter-space distance (orthonormal axes)",
                               "PC 2 (25.0% of variance): parameter-space distance (orthonormal axes)")
    ls.kind, ls.attrs = "random", {"axis_units": "direction units (filter-normalised)"}
    assert axis_labels(ls)[1] == "direction 2: direction units (filter-normalised)"
    ls.attrs = {}
    assert axis_labels(ls) == ("distance along direction 1", "distance along direction 2")
    assert export_figure(ls, "trigger_loss", tmp_path / "map.png").stat().st_size > 0  # the figure takes them
