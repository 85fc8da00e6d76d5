from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from conftest import quick_config

from wmstudio.config_io import load_config
from wmstudio.control import RunControl
from wmstudio.errors import StageFailed
from wmstudio.events import Metrics, RunFinished, StageFinished, StageStarted, Step
from wmstudio.metrics import evaluate
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment
from wmstudio.resources import example_config
from wmstudio.runlog_reader import RunLogReader


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo") / "demo.h5"
    events: list = []
    cfg = load_config(example_config("demo"), ["run.threads=2"])
    result = run_experiment(cfg, out, events.append)
    return out, events, result


def test_demo_embeds_attacks_and_restores(demo_log) -> None:
    out, events, result = demo_log
    assert result.status == "finished"
    r = RunLogReader(out)
    assert r.status == "finished" and r.stage_names() == ["embed", "finetune", "restore"]
    embed, finetune, restore = r.stages()
    assert embed.final("trigger_acc") >= 0.9
    assert embed.final("test_acc") >= 0.9
    assert embed.final("p_value") < 1e-20
    for st in (embed, finetune, restore):
        assert st.status == "finished" and st.has_weights
        n_eval = len(st.eval["test_acc"])
        assert n_eval == st.config["epochs"] + 1  # the starting point and one row per epoch
        assert len(st.train["loss"]) == st.config["epochs"] * len(st.train["loss"]) // st.config["epochs"]
        assert st.layer_l2.shape == (n_eval, len(st.layer_names)) and st.trajectory_rows == n_eval
    # fine-tuning starts from the watermarked model: zero drift, same trigger accuracy
    assert finetune.eval["drift_l2"][0] == 0.0
    assert finetune.eval["trigger_acc"][0] == pytest.approx(embed.final("trigger_acc"))
    assert restore.eval["drift_l2"][0] == pytest.approx(finetune.final("drift_l2"), rel=1e-6)
    # the event stream mirrors the log
    metrics = [e for e in events if isinstance(e, Metrics) and e.stage == "restore"]
    assert [m.values["trigger_acc"] for m in metrics] == pytest.approx(list(restore.eval["trigger_acc"]))
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.global_step for e in steps] == list(range(1, len(steps) + 1))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "finished"


def test_log_holds_splits_trigger_and_weights_that_reproduce_metrics(demo_log) -> None:
    out, _, _ = demo_log
    r = RunLogReader(out)
    splits = r.splits()
    assert not set(splits["owner"]) & set(splits["attacker"])
    trig = r.trigger()
    assert trig["scheme"] == "content" and trig["images"].shape == (100, 1, 8, 8)
    info = r.data_info()
    from wmstudio.data import load_dataset
    from wmstudio.data.batches import Normalizer

    d = load_dataset("digits")
    model = build_model("small_cnn", 1, 10, 8, {"width": 16})
    model.load_state_dict(r.weights("embed"))
    norm = Normalizer(tuple(info["mean"]), tuple(info["std"]))
    test = d.test.subset(splits["test"])
    loss, acc = evaluate(model, test.images, test.labels, norm)
    assert acc == pytest.approx(r.stage("embed").final("test_acc"))
    _, trig_acc = evaluate(model, torch.from_numpy(trig["images"]), torch.from_numpy(trig["labels"]), norm)
    assert trig_acc == pytest.approx(r.stage("embed").final("trigger_acc"))
    assert r.trajectory("embed").shape[1] == sum(p.numel() for p in model.parameters())


def test_cancel_mid_stage_keeps_the_log(tmp_path) -> None:
    control = RunControl()
    seen: list = []

    def callback(event) -> None:
        seen.append(event)
        if isinstance(event, Step) and event.stage == "finetune" and event.step == 3:
            control.cancel()

    out = tmp_path / "cancel.h5"
    result = run_experiment(load_config(data=quick_config(embed={"epochs": 2})), out, callback, control)
    assert result.status == "cancelled"
    r = RunLogReader(out)
    assert r.status == "cancelled"
    assert r.stage("embed").status == "finished"
    ft = r.stage("finetune")
    assert ft.status == "cancelled" and len(ft.train["loss"]) == 3  # cancelled within one batch: no step 4
    assert "restore" not in r.stage_names()
    assert any(isinstance(e, StageFinished) and e.status == "cancelled" for e in seen)
    assert r.weights("finetune")  # the partial weights are kept


def test_pause_blocks_training_and_resume_continues(tmp_path) -> None:
    control = RunControl()
    steps: list[float] = []
    paused_at: list[int] = []

    def callback(event) -> None:
        if isinstance(event, Step):
            steps.append(time.monotonic())
            if event.global_step == 2:
                control.pause()
                paused_at.append(event.global_step)
                threading.Timer(0.6, control.resume).start()

    out = tmp_path / "pause.h5"
    result = run_experiment(load_config(data=quick_config(embed={"epochs": 1}, finetune={"enabled": False},
                                                          restore={"enabled": False})), out, callback, control)
    assert result.status == "finished" and paused_at == [2]
    assert steps[2] - steps[1] >= 0.5  # the third step waited for resume
    assert RunLogReader(out).stage("embed").status == "finished"


def test_diverging_loss_stops_with_a_clear_message(tmp_path) -> None:
    out = tmp_path / "nan.h5"
    cfg = load_config(data=quick_config(embed={"epochs": 1}, finetune={"momentum": 0.0}))
    cfg.finetune.lr = 1e12  # past the config's bound on purpose: the engine's own NaN stop is under test
    with pytest.raises(StageFailed, match=r"finetune: the loss became (nan|inf).*lower finetune.lr"):
        run_experiment(cfg, out)
    r = RunLogReader(out)
    assert r.status == "failed" and "loss became" in r.attrs["status_message"]
    assert r.stage("finetune").status == "failed" and r.stage("embed").status == "finished"


@pytest.mark.parametrize("variant", ["FTLL", "RTLL", "RTAL"])
def test_fine_tune_variants(tmp_path, variant: str) -> None:
    out = tmp_path / f"{variant}.h5"
    cfg = load_config(data=quick_config(embed={"epochs": 1}, finetune={"variant": variant, "epochs": 1},
                                        restore={"enabled": False}))
    run_experiment(cfg, out)
    r = RunLogReader(out)
    before, after = r.weights("embed"), r.weights("finetune")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    if variant.endswith("LL"):
        assert changed == {"fc.weight", "fc.bias"}  # BatchNorm statistics included: nothing else moves
    else:
        assert len(changed) > 10
    layer_l2 = r.stage("finetune").layer_l2[-1]
    assert (layer_l2[:-1] == 0).all() == variant.endswith("LL") and layer_l2[-1] > 0


def test_restore_stops_on_plateau_and_stages_can_be_chosen(tmp_path) -> None:
    out = tmp_path / "plateau.h5"
    cfg = load_config(data=quick_config(embed={"epochs": 1}, finetune={"epochs": 1},
                                        restore={"epochs": 30, "stop_on_plateau": True, "patience": 1, "min_delta": 0.5}))
    events: list = []
    run_experiment(cfg, out, events.append)
    restore = RunLogReader(out).stage("restore")
    assert restore.status == "stopped_early" and restore.final("epoch") < 30
    assert "plateaued" in restore.message
    out2 = tmp_path / "only_embed.h5"
    run_experiment(cfg, out2, stages=["embed"])
    assert RunLogReader(out2).stage_names() == ["embed"]


def test_mitigation_and_adversarial_pretraining(tmp_path) -> None:
    out = tmp_path / "adv.h5"
    events: list = []
    cfg = load_config(data=quick_config(trigger={"scheme": "adversarial", "size": 40}, embed={"epochs": 2, "clean_epochs": 2},
                                        finetune={"epochs": 1, "mix_owner_fraction": 0.3}, restore={"enabled": False}))
    run_experiment(cfg, out, events.append)
    r = RunLogReader(out)
    assert r.stage_names() == ["pretrain", "embed", "finetune"]
    assert np.isnan(r.stage("pretrain").eval["trigger_acc"]).all()  # triggers are made after pre-training
    assert r.trigger()["params"]["fooled_fraction"] > 0
    starts = [e for e in events if isinstance(e, StageStarted) and e.stage == "finetune"]
    owner_n, att_n = len(r.splits()["owner"]), len(r.splits()["attacker"])
    assert starts[0].steps_per_epoch == -(-att_n // 128) and owner_n > att_n


def test_readers_wait_for_a_commit_in_progress(demo_run) -> None:
    """A reader never opens the log in the middle of a commit (another process may be writing it)."""
    from wmstudio.log_file import _advisory_lock

    held = threading.Event()

    def commit() -> None:
        with _advisory_lock(demo_run, exclusive=True):
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=commit)
    t.start()
    held.wait(5)
    start = time.perf_counter()
    assert RunLogReader(demo_run).status == "finished"
    assert time.perf_counter() - start >= 0.35
    t.join()


def test_onecycle_schedule_and_label_smoothing() -> None:
    """The fast-schedule options: one-cycle (warm-up from lr/25 over 15% of the steps, cosine to 0) and
    label smoothing of the plain training loss."""
    import dataclasses

    import torch.nn.functional as F

    from wmstudio.config import TrainSection
    from wmstudio.stages.training import StageHooks, make_optimizer, make_scheduler

    t = dataclasses.replace(TrainSection(), epochs=4, lr=0.2, scheduler="onecycle", label_smoothing=0.1)
    model = torch.nn.Linear(3, 4)
    opt = make_optimizer(model.parameters(), t)
    sched = make_scheduler(opt, t, steps_per_epoch=25)  # 100 steps, 15 of warm-up
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.2 / 25) and max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == 15
    assert all(a <= b for a, b in zip(lrs[:15], lrs[1:16], strict=True))  # rising, then falling to near 0
    assert all(a >= b for a, b in zip(lrs[15:-1], lrs[16:], strict=True)) and lrs[-1] < 0.001
    hooks = StageHooks()
    hooks.label_smoothing = t.label_smoothing
    x, y = torch.randn(8, 3), torch.randint(0, 4, (8,))
    assert float(hooks.loss(model, x, y)) == pytest.approx(float(F.cross_entropy(model(x), y, label_smoothing=0.1)))
    assert float(hooks.loss(model, x, y)) != pytest.approx(float(F.cross_entropy(model(x), y)))
