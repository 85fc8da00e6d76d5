"""The embedding methods, model extraction and the published mitigation, on the built-in digits.

Each method must embed a watermark (trigger accuracy >= 0.9) at a test accuracy within 5 points
of plain training, and each test checks the method's defining mechanism, not only its result.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmstudio.config_io import load_config
from wmstudio.data.batches import Normalizer
from wmstudio.landscape.flat import ParamVector
from wmstudio.methods.common import layer_blocks
from wmstudio.methods.dual_bn import DualBatchNorm2d, has_dual_bn
from wmstudio.methods.ewe import Penultimate, snnl
from wmstudio.model_build import build_from_config
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment
from wmstudio.resources import example_config
from wmstudio.runlog_reader import RunLogReader

EMBED_ONLY = ["run.threads=2", "finetune.enabled=false", "restore.enabled=false"]
CERT_SMALL = ["embed.cert_draws=4", "embed.cert_levels=4", "embed.cert_sigma_step=0.1",
              "embed.cert_warmup_epochs=5", "embed.cert_lr_scale=0.2"]


def _embed(tmp_path_factory, method: str, extra: list[str] | None = None):  # noqa: ANN001, ANN202
    out = tmp_path_factory.mktemp(method) / "run.h5"
    events: list = []
    cfg = load_config(example_config("demo"), [*EMBED_ONLY, f"embed.method='{method}'", *(extra or [])])
    from wmstudio.control import RunControl
    from wmstudio.pipeline import prepare_session

    captured = {}
    import wmstudio.pipeline as pipeline

    original = pipeline.prepare_session

    def keep(*a, **k):  # noqa: ANN002, ANN003, ANN202 - keep the session to inspect the method's state
        s = original(*a, **k)
        captured["s"] = s
        return s

    pipeline.prepare_session = keep
    try:
        run_experiment(cfg, out, events.append, RunControl())
    finally:
        pipeline.prepare_session = original
    assert prepare_session is original
    return out, captured["s"], events


@pytest.fixture(scope="module")
def plain(tmp_path_factory):  # noqa: ANN001, ANN201
    return _embed(tmp_path_factory, "plain")


def _check_watermark(out, plain) -> None:  # noqa: ANN001
    e = RunLogReader(out).stage("embed")
    p = RunLogReader(plain[0]).stage("embed")
    assert e.final("trigger_acc") >= 0.9
    assert e.final("test_acc") >= p.final("test_acc") - 0.05, (e.final("test_acc"), p.final("test_acc"))


def test_rowback_freezes_all_groups_but_one_each_epoch(tmp_path_factory, plain) -> None:
    out, s, _ = _embed(tmp_path_factory, "rowback")
    _check_watermark(out, plain)
    hooks = s.method_state
    blocks = layer_blocks(s.model)
    assert hooks.groups == blocks and len(blocks) == 4  # small_cnn: four conv blocks, each with its BatchNorm
    names = [n for n, _ in s.model.named_parameters()]
    plain_epochs = s.cfg.embed.rowback_plain_epochs
    assert all(trained == names for trained in hooks.trained[:plain_epochs])
    seen = []
    for epoch, trained in enumerate(hooks.trained[plain_epochs:]):
        group = blocks[epoch % len(blocks)].split("+")
        assert set(trained) == {n for n in names if n.split(".")[0] == "fc" or any(n.startswith(g + ".") for g in group)}
        seen.append(blocks[epoch % len(blocks)])
    assert set(seen) == set(blocks)
    # the log keeps the schedule that ran: which group each epoch trained, and the share of rotating epochs
    rec = RunLogReader(out).stage_json("embed", "rowback_json")
    epochs = s.cfg.embed.epochs
    assert rec["schedule"] == ["all"] * plain_epochs + seen and rec["epochs"] == epochs
    assert rec["rotating_share"] == pytest.approx((epochs - plain_epochs) / epochs)
    assert rec["trainable_share"][0] == 1.0 and all(0 < v < 1 for v in rec["trainable_share"][plain_epochs:])
    # and the frozen weights really did not move: compare the recorded trajectory across one epoch
    traj = RunLogReader(out).trajectory("embed")
    pv = ParamVector(s.model)
    epoch = plain_epochs  # the first rotating epoch: rows epoch and epoch+1 bracket it
    before, after = traj[epoch], traj[epoch + 1]
    for name, sl, _ in pv.slices():
        moved = not np.array_equal(before[sl], after[sl])
        assert moved == (name in hooks.trained[epoch]), name


def test_certified_robust_passes_and_verification_radius(tmp_path_factory, plain) -> None:
    out, s, events = _embed(tmp_path_factory, "certified", CERT_SMALL)
    _check_watermark(out, plain)
    hooks = s.method_state
    assert hooks.robust_passes == s.cfg.embed.epochs - s.cfg.embed.cert_warmup_epochs
    cert = RunLogReader(out).stage_json("embed", "certified_json")
    assert cert["sigma"] == s.cfg.embed.cert_sigma and len(cert["radii"]) == 100
    assert all(r >= 0 for r in cert["radii"]) and cert["mean_radius"] > 0 and cert["certified_fraction"] > 0.5
    robust = cert["robust_trigger_acc"]
    assert robust["0.0"] >= robust["0.25"] >= robust["1.0"]
    assert any("certified watermark" in getattr(e, "message", "") for e in events)


def test_certify_abstains_on_a_model_that_never_saw_the_triggers() -> None:
    from wmstudio.methods.certified import certify

    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8, {"width": 16})
    images = torch.randint(0, 255, (50, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 10, (50,))
    cert = certify(model, images, labels, Normalizer((0.5,), (0.25,)), sigma=0.5, n=50)
    assert cert["certified_fraction"] < 0.5


def test_app_perturbation_has_the_configured_size_and_raises_the_trigger_loss(tmp_path_factory, plain) -> None:
    out, s, _ = _embed(tmp_path_factory, "app", ["embed.app_eps=0.02"])
    _check_watermark(out, plain)
    assert has_dual_bn(s.model) and isinstance(s.model.features[1], DualBatchNorm2d)
    hooks = s.method_state
    np.testing.assert_allclose(hooks.last_rel_sizes, 0.02, rtol=1e-3)
    before, after = hooks.last_trigger_loss
    assert after > before  # the perturbation is the one that removes the watermark
    # the run log's weights rebuild through the same config (separate trigger BatchNorm included)
    model = build_from_config(s.cfg, 1, 10, 8)
    model.load_state_dict(RunLogReader(out).weights("embed"))


def test_ewe_entangles_trigger_and_target_class_representations(tmp_path_factory, plain) -> None:
    out, s, _ = _embed(tmp_path_factory, "ewe")
    _check_watermark(out, plain)
    assert np.isfinite(s.method_state.last_snnl)

    def entanglement(log) -> float:  # noqa: ANN001
        r = RunLogReader(log)
        cfg = load_config(data=__import__("json").loads(r.config_json))
        model = build_from_config(cfg, 1, 10, 8)
        model.load_state_dict(r.weights("embed"))
        model.eval()
        info, t = r.data_info(), r.trigger()
        norm = Normalizer(tuple(info["mean"]), tuple(info["std"]))
        from wmstudio.data import load_dataset

        test = load_dataset("digits").test
        target = test.images[test.labels == cfg.trigger.target_class][:100]
        x = norm(torch.cat([torch.from_numpy(t["images"]), target]))
        groups = torch.cat([torch.ones(len(t["images"])), torch.zeros(len(target))]).long()
        feats = Penultimate(model)
        with torch.no_grad():
            model(x)
        feats.close()
        return float(snnl(feats.value, groups, cfg.embed.ewe_temperature))

    assert entanglement(out) > entanglement(plain[0])


def test_model_extraction_steals_a_copy_and_restores_it(tmp_path) -> None:
    out = tmp_path / "extract.h5"
    cfg = load_config(example_config("demo"), ["run.threads=2", "finetune.enabled=false", "extract.enabled=true",
                                               "extract.epochs=20", "extract.arch='small_cnn'",
                                               "extract.options={ width = 12 }", "restore.epochs=3"])
    run_experiment(cfg, out)
    r = RunLogReader(out)
    assert r.stage_names() == ["embed", "extract", "restore"]
    x = r.stage("extract")
    assert x.status == "finished" and x.final("test_acc") > 0.7  # a working copy
    assert 0.0 <= x.final("trigger_acc") <= 1.0 and np.isfinite(r.stage("restore").final("trigger_acc"))
    info = r.stage_json("extract", "extraction_json")
    assert info["arch"] == "small_cnn" and info["options"] == {"width": 12} and info["queries"] > 100
    assert r.weights("restore")["fc.weight"].shape == (10, 24)  # the copy's architecture (width 12 -> 24 features)


def test_published_mitigation_takes_an_owner_step_after_every_kth_batch(tmp_path) -> None:
    from wmstudio.control import RunControl
    from wmstudio.pipeline import prepare_session

    cfg = load_config(example_config("demo"), ["run.threads=2", "embed.epochs=6", "finetune.epochs=3",
                                               "finetune.owner_step_every=2", "restore.enabled=false"])
    import wmstudio.pipeline as pipeline

    captured = {}
    original = pipeline.prepare_session
    pipeline.prepare_session = lambda *a, **k: captured.setdefault("s", original(*a, **k))
    try:
        run_experiment(cfg, tmp_path / "m.h5", control=RunControl())
    finally:
        pipeline.prepare_session = original
    assert prepare_session is original
    ft = RunLogReader(tmp_path / "m.h5").stage("finetune")
    steps_per_epoch = ft.config["batch_size"] and int(RunLogReader(tmp_path / "m.h5").stage("finetune").train["global_step"].size / 3)
    assert captured["s"].method_state.extra_steps == 3 * (steps_per_epoch // 2)


def test_method_is_validated_and_listed_in_the_config(tmp_path) -> None:
    from wmstudio.errors import ConfigError

    with pytest.raises(ConfigError, match="embed.method"):
        load_config(example_config("demo"), ["embed.method='magic'"])
    with pytest.raises(ConfigError, match="extract.enabled"):
        load_config(example_config("demo"), ["extract.enabled=true"])
    with pytest.raises(ConfigError, match="rowback_groups"):
        cfg = load_config(example_config("demo"), [*EMBED_ONLY, "embed.method='rowback'", "embed.rowback_groups=['nope']"])
        run_experiment(cfg, tmp_path / "never.h5")


@pytest.mark.parametrize("arch", ["resnet20", "vit"])
@pytest.mark.parametrize("method", ["certified", "rowback", "app", "ewe"])
def test_every_method_runs_on_resnet_and_vit(tmp_path, arch: str, method: str) -> None:
    extra = ["embed.cert_draws=2", "embed.cert_levels=2", "embed.cert_warmup_epochs=1"] if method == "certified" else []
    options = "{ patch = 4, dim = 32, depth = 2, heads = 2 }" if arch == "vit" else "{}"
    cfg = load_config(example_config("demo"), [*EMBED_ONLY, f"embed.method='{method}'", "embed.epochs=2",
                                               "embed.rowback_plain_epochs=1", f"model.arch='{arch}'",
                                               f"model.options={options}", *extra])
    out = tmp_path / "run.h5"
    assert run_experiment(cfg, out).status == "finished"
    r = RunLogReader(out)
    assert np.isfinite(r.stage("embed").final("test_acc"))
    model = build_from_config(cfg, 1, 10, 8)
    model.load_state_dict(r.weights("embed"))
    assert has_dual_bn(model) == (method == "app" and arch == "resnet20")


def test_app_refuses_a_model_it_collapsed_with_the_reason() -> None:
    from types import SimpleNamespace

    from wmstudio.errors import StageFailed
    from wmstudio.methods.app import AppHooks

    notes: list = []
    fake = SimpleNamespace(cfg=SimpleNamespace(embed=SimpleNamespace(app_eps=0.02, app_alpha=1.0)), num_classes=10,
                           emit=notes.append)
    ok, dead = {"test_acc": 0.87, "majority_share": 0.11}, {"test_acc": 0.16, "majority_share": 0.62}
    hooks = AppHooks(fake, 13)  # type: ignore[arg-type]
    hooks.after_evaluation(ok, 0, False)  # the starting point (a trained base) works
    with pytest.raises(StageFailed) as e:  # a working model that APP collapses: stopped at once
        hooks.after_evaluation(dead, 2, False)
    text = str(e.value)
    assert "APP collapsed the model at epoch 2" in text and "test accuracy 0.160 is within 0.1 of chance" in text
    assert "one class takes 62%" in text and "embed.app_alpha = 1" in text and "base:cifar10_fastcnn" in text
    scratch = AppHooks(fake, 13)  # type: ignore[arg-type]
    scratch.after_evaluation(dead, 0, False)  # from scratch: not yet working is not a collapse...
    scratch.after_evaluation(dead, 5, True)  # ...and a final model that never worked gets a warning, not a failure
    assert len(notes) == 1 and "never working in this stage" in notes[0].message and "app_alpha" in notes[0].message
    AppHooks(fake, 13).after_evaluation(ok, 5, True)  # type: ignore[arg-type]
    assert len(notes) == 1
