"""The removal attacks of ``[attack] kind`` on the built-in digits: each one's mechanism and the trigger
accuracy it leaves, every one followed by restoration, in the same log layout as fine-tuning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wmstudio.config_io import load_config
from wmstudio.errors import ConfigError
from wmstudio.pipeline import planned_stages, run_experiment
from wmstudio.resources import example_config
from wmstudio.runlog_reader import RunLogReader


def attack(demo_run: Path, tmp_path: Path, kind: str, *sets: str) -> RunLogReader:
    """Attack the demo's watermarked model with ``kind``, then restore for one epoch."""
    cfg = load_config(example_config("demo"), ["run.threads=1", f"attack.kind='{kind}'", "restore.epochs=1",
                                               f"model.checkpoint='{demo_run}:embed'", *sets])
    out = tmp_path / f"{kind}.h5"
    result = run_experiment(cfg, out, stages=["attack", "restore"], trigger_from=demo_run)
    assert result.status == "finished"
    r = RunLogReader(out)
    assert r.stage_names() == ["attack", "restore"]
    a = r.stage("attack")
    for col in ("test_acc", "trigger_acc", "drift_rel", "p_value"):  # the metrics fine-tuning records
        assert len(a.eval[col]) >= 2
    assert r.stage_json("attack", "attack_json")["before"]["trigger_acc"] >= 0.9  # the demo's watermark
    return r


def conv_linear(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if k.endswith(".weight") and v.dim() in (2, 4)}


def test_config_picks_the_attack_stage_and_old_configs_keep_their_plan() -> None:
    old = load_config(example_config("demo"))
    assert old.attack.kind == "finetune" and planned_stages(old) == ["embed", "finetune", "restore"]
    cfg = load_config(example_config("demo"), ["attack.kind='prune'"])
    assert planned_stages(cfg) == ["embed", "attack", "restore"]
    with pytest.raises(ConfigError, match="attack.kind"):
        load_config(example_config("demo"), ["attack.kind='prune'", "finetune.enabled=false", "extract.enabled=true"])
    with pytest.raises(ConfigError, match="attack.sparsity"):
        load_config(example_config("demo"), ["attack.sparsity=1.0"])
    with pytest.raises(ConfigError, match="attack.kind"):
        load_config(example_config("demo"), ["attack.kind='erase'"])


def test_global_magnitude_pruning_reaches_its_sparsity(demo_run, tmp_path) -> None:
    r = attack(demo_run, tmp_path, "prune", "attack.sparsity=0.7")
    w = conv_linear(r.weights("attack"))
    zeros = sum(int((v == 0).sum()) for v in w.values()) / sum(v.numel() for v in w.values())
    assert zeros == pytest.approx(0.7, abs=1e-3)
    info = r.stage_json("attack", "attack_json")
    assert info["sparsity_reached"] == pytest.approx(0.7, abs=1e-3)
    a = r.stage("attack")
    assert a.eval["trigger_acc"][0] >= 0.9 and a.final("drift_rel") > 0.1
    assert 0.0 <= a.final("trigger_acc") <= 1.0
    assert (conv_linear(r.weights("restore"))["fc.weight"] != 0).float().mean() > 0.99  # restoration regrows them


def test_channel_pruning_removes_whole_channels(demo_run, tmp_path) -> None:
    r = attack(demo_run, tmp_path, "channel_prune", "attack.sparsity=0.25")
    w = r.weights("attack")
    info = r.stage_json("attack", "attack_json")
    assert info["channel_sparsity_reached"] == pytest.approx(0.25, abs=0.02)
    for layer, channels in info["pruned_channels"].items():
        conv = w[f"{layer}.weight"]
        assert len(channels) == round(0.25 * conv.shape[0])
        assert bool((conv[channels] == 0).all()) and bool((conv.flatten(1).abs().sum(1) > 0).sum() == conv.shape[0] - len(channels))
    # the BatchNorm after the first conv is zeroed on the same channels: the channel outputs exactly 0
    first = info["pruned_channels"]["features.0"]
    assert bool((w["features.1.weight"][first] == 0).all()) and bool((w["features.1.bias"][first] == 0).all())


def test_fine_pruning_removes_the_least_active_channels_and_keeps_them_removed(demo_run, tmp_path) -> None:
    r = attack(demo_run, tmp_path, "fine_prune", "attack.sparsity=0.5", "finetune.epochs=2")
    info = r.stage_json("attack", "attack_json")
    assert info["layer"] == "features.11" and len(info["pruned_channels"]) == info["channels"] // 2
    activity = torch.tensor(info["activity"])
    kept = sorted(set(range(info["channels"])) - set(info["pruned_channels"]))
    assert activity[info["pruned_channels"]].max() <= activity[kept].min()  # the dormant ones went
    w = r.weights("attack")  # after fine-tuning: still removed
    assert bool((w["features.11.weight"][info["pruned_channels"]] == 0).all())
    assert bool((w["features.12.weight"][info["pruned_channels"]] == 0).all())
    a = r.stage("attack")
    assert a.eval["trigger_acc"][0] == pytest.approx(info["after_pruning"]["trigger_acc"])  # pruned, not yet tuned
    assert len(a.eval["trigger_acc"]) == 3 and a.final("test_acc") >= info["after_pruning"]["test_acc"] - 0.02


@pytest.mark.parametrize("bits", [8, 4])
def test_quantisation_puts_every_weight_on_the_int_grid(demo_run, tmp_path, bits) -> None:
    r = attack(demo_run, tmp_path, "quantize", f"attack.bits={bits}")
    qmax = 2 ** (bits - 1) - 1
    for name, v in conv_linear(r.weights("attack")).items():
        scale = v.abs().flatten(1).amax(1).view(-1, *([1] * (v.dim() - 1))) / qmax
        q = v / scale
        assert torch.allclose(q, q.round(), atol=1e-3), name
        assert int(q.round().abs().max()) <= qmax
        assert max(len(torch.unique(row.round())) for row in q.flatten(1)) <= 2 * qmax + 1
    a = r.stage("attack")
    if bits == 8:  # int8 changes nothing a classifier cares about; int4 may
        assert a.final("trigger_acc") >= a.eval["trigger_acc"][0] - 0.02


def test_weight_noise_has_the_relative_size_asked_for(demo_run, tmp_path) -> None:
    r = attack(demo_run, tmp_path, "noise", "attack.noise_scale=0.2")
    before = RunLogReader(demo_run).weights("embed")
    after = r.weights("attack")
    big = [k for k, v in conv_linear(before).items() if v.numel() >= 1000]
    for k in big:
        ratio = float((after[k] - before[k]).pow(2).mean().sqrt() / before[k].pow(2).mean().sqrt())
        assert ratio == pytest.approx(0.2, rel=0.1), k
    assert r.stage("attack").final("drift_rel") == pytest.approx(0.2, rel=0.15)


def test_distillation_trains_a_student_of_another_architecture_that_agrees_with_the_teacher(demo_run, tmp_path) -> None:
    r = attack(demo_run, tmp_path, "distill", "extract.arch='small_cnn'", "extract.options={ width = 12 }",
               "extract.epochs=20", "attack.temperature=3.0")
    info = r.stage_json("attack", "attack_json")
    assert info["options"] == {"width": 12} and info["temperature"] == 3.0
    assert r.weights("attack")["fc.weight"].shape == (10, 24)  # the student's, not the teacher's (32)
    assert info["student_teacher_agreement_test"] > 0.75
    a = r.stage("attack")
    assert a.eval["test_acc"][0] < 0.3 < 0.75 < a.final("test_acc")  # from scratch to a working copy
    assert a.final("trigger_acc") == pytest.approx(info["student_teacher_agreement_trigger"], abs=0.35)
    from wmstudio.export_model import export_model

    meta = export_model(f"{tmp_path / 'distill.h5'}:restore", tmp_path / "student.pt")
    assert meta["architecture"]["options"] == {"width": 12}


def test_neural_cleanse_finds_the_content_watermarks_target_class_and_unlearns_it(demo_run, tmp_path) -> None:
    r = attack(demo_run, tmp_path, "neural_cleanse", "finetune.epochs=3")
    info = r.stage_json("attack", "attack_json")
    assert info["flagged_class"] == 0  # the demo's content watermark relabels to class 0
    assert min(info["mask_l1"]) == info["mask_l1"][0]
    assert info["stamped_images"] == round(0.2 * info["unlearning_images"])
    a = r.stage("attack")
    assert a.final("trigger_acc") < info["before"]["trigger_acc"] - 0.2 and a.final("test_acc") > 0.85


def test_a_full_run_with_an_attack_stage_and_its_landscape_plane(tmp_path) -> None:
    """embed -> attack -> restore in one run; the default plane goes through the three models."""
    from wmstudio.landscape.compute import compute_landscape
    from wmstudio.landscape.spec import LandscapeSpec

    cfg = load_config(example_config("demo"), ["run.threads=1", "attack.kind='noise'", "attack.noise_scale=0.3",
                                               "embed.epochs=3", "restore.epochs=1"])
    out = tmp_path / "full.h5"
    assert run_experiment(cfg, out).status == "finished"
    r = RunLogReader(out)
    assert r.stage_names() == ["embed", "attack", "restore"]
    assert r.stage("restore").eval["trigger_acc"][0] == pytest.approx(r.stage("attack").final("trigger_acc"))
    ls = compute_landscape(out, LandscapeSpec(kind="plane", resolution=3, images=200))
    assert ls.spec.models == ["embed", "attack", "restore"]


@pytest.mark.parametrize("kind", ["prune", "neural_cleanse", "fine_prune"])
def test_a_cancelled_attack_leaves_a_readable_log(demo_run, tmp_path, kind) -> None:
    from wmstudio.control import RunControl
    from wmstudio.events import StageStarted

    control = RunControl()
    cfg = load_config(example_config("demo"), ["run.threads=1", f"attack.kind='{kind}'",
                                               f"model.checkpoint='{demo_run}:embed'"])

    def cancel_at_once(event: object) -> None:
        if not isinstance(event, StageStarted):  # before the attack stage (or inside it, when it trains)
            control.cancel()

    out = tmp_path / "cancelled.h5"
    result = run_experiment(cfg, out, cancel_at_once, control, stages=["attack", "restore"], trigger_from=demo_run)
    assert result.status == "cancelled"
    r = RunLogReader(out)
    assert r.status == "cancelled" and "restore" not in r.stage_names()
    for rec in r.stages():  # a stage that began was closed as cancelled, its partial weights kept
        assert rec.status == "cancelled" and rec.has_weights
