"""Arithmetic precision: where bf16 counts as fast, the landscape's auto check (with a simulated CPU, so
these pass on processors with and without bf16), trigger metrics always fp32, and bf16 training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import quick_config
from torch import nn

from wmstudio import precision as precision_mod
from wmstudio.cli import main
from wmstudio.config_io import load_config
from wmstudio.control import RunControl
from wmstudio.data.batches import Normalizer
from wmstudio.errors import ConfigError
from wmstudio.events import LandscapePoints
from wmstudio.landscape import LandscapeSpec, batchsize, compute_landscape, read
from wmstudio.landscape.directions import Plane
from wmstudio.landscape.evaluator import PointEvaluator
from wmstudio.landscape.points import GridPoints
from wmstudio.landscape.precision_check import check_indices, choose_precision, disagreement
from wmstudio.precision import bf16_fast
from wmstudio.runlog_reader import RunLogReader

NORM = Normalizer((0.5,), (0.25,))
WITH_BF16 = frozenset({"avx512f", "avx512_bf16"})
WITHOUT_BF16 = frozenset({"avx2", "avx512f"})
CPU = torch.device("cpu")


class Net(nn.Module):
    """A small conv net; ``skew`` > 0 adds it to the first logit whenever autocast is on, i.e. a model whose
    bf16 outputs disagree with fp32 however fine the arithmetic."""

    def __init__(self, skew: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)
        self.skew = skew

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(torch.relu(self.conv(x)).flatten(1))
        if self.skew and torch.is_autocast_enabled(x.device.type):
            out = out.float() + torch.tensor([self.skew] + [0.0] * 9)
        return out


def _setup(skew: float = 0.0, n_clean: int = 200, own_labels: bool = False) -> tuple[PointEvaluator, GridPoints]:
    """``own_labels``: the labels are the fp32 model's own predictions (it is right on every image at the
    centre, as a trained model is on most), else random."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n_clean + 40, 1, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n_clean + 40,), generator=g)
    if own_labels:
        with torch.no_grad():
            y = Net()(NORM(x)).argmax(1)
    ev = PointEvaluator(Net(skew), x[:n_clean], y[:n_clean], x[n_clean:], y[n_clean:], NORM, batch_size=64)
    center = ev.pv.get()
    d1, d2 = (torch.randn(center.shape, generator=g) * 0.01 for _ in range(2))
    return ev, GridPoints(Plane(center, d1, d2), np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))


def test_bf16_counts_as_fast_only_with_the_cpu_flags() -> None:
    assert bf16_fast(CPU, WITH_BF16) == (True, "CPU has avx512_bf16")
    assert bf16_fast(CPU, frozenset({"amx_bf16"}))[0]
    fast, why = bf16_fast(CPU, WITHOUT_BF16)
    assert not fast and "neither AVX512-BF16 nor AMX" in why


def test_auto_stays_fp32_without_bf16_and_evaluates_nothing() -> None:
    choice = choose_precision("auto", CPU, None, None, flags=WITHOUT_BF16)  # no evaluator needed: no check
    assert choice.precision == "fp32" and "neither AVX512-BF16 nor AMX" in choice.reason and not choice.figures
    assert choose_precision("fp32", CPU, flags=WITH_BF16).precision == "fp32"
    forced = choose_precision("bf16", CPU, flags=WITHOUT_BF16)
    assert forced.precision == "bf16" and "slow here" in forced.reason


def test_check_points_are_the_centre_and_distinct_others() -> None:
    idx = check_indices((5, 5), seed=0)
    assert idx[0] == 12 and len(set(idx.tolist())) == 4 and all(0 <= i < 25 for i in idx)
    assert check_indices((4, 6), seed=0)[0] == 2 * 6 + 3
    assert check_indices((7,), seed=1)[0] == 3 and len(check_indices((2,), seed=1)) == 2


def test_tolerance_losses_relative_accuracies_absolute() -> None:
    base = {"test_loss": 2.0, "test_acc": 0.5, "trigger_loss": 1.0, "trigger_acc": 0.9}
    assert disagreement(base, {**base, "test_loss": 2.0199, "test_acc": 0.505}) == ""  # within 1%, 0.005
    assert disagreement(base, {**base, "test_loss": 1.9801, "test_acc": 0.495}) == ""
    assert "test_loss 2.021 in bf16 against 2 in fp32 (more than 1.00% apart)" in \
        disagreement(base, {**base, "test_loss": 2.021})
    why = disagreement(base, {**base, "test_acc": 0.4945}, (0, 11))
    assert why == "test_acc 0.4945 in bf16 against 0.5 in fp32 (more than 0.005 apart; 0 images right only in " \
                  "bf16, 11 only in fp32)"
    assert "trigger_acc" in disagreement(base, {**base, "trigger_acc": 0.906})
    nan = float("nan")
    assert disagreement({**base, "test_loss": nan}, {**base, "test_loss": nan}) == ""
    assert "test_loss" in disagreement(base, {**base, "test_loss": nan})


class ScriptedEvaluator:
    """Stands in for a PointEvaluator: fp32 gets 1,000 of 2,000 images right at every point; bf16 makes
    ``up`` more images right and ``down`` of fp32's right ones wrong; losses as given."""

    def __init__(self, up: int, down: int, loss32: float, loss16: float, numel: int) -> None:
        self.precision, self.up, self.down, self.loss = "fp32", up, down, {"fp32": loss32, "bf16": loss16}
        self.pv = type("PV", (), {"numel": numel})()  # the size of the points' parameter vectors
        self.inputs = torch.zeros(1)

    def evaluate(self, flat: object = None, stats: object = None) -> dict[str, float]:
        right = torch.zeros(2000, dtype=torch.bool)
        right[:1000] = True
        if self.precision == "bf16":
            right[1000:1000 + self.up] = True
            right[:self.down] = False
        self._right = right
        return {"test_loss": self.loss[self.precision], "test_acc": float(right.float().mean()),
                "trigger_loss": 0.5, "trigger_acc": 1.0}

    def clean_correct(self) -> torch.Tensor:
        return self._right.clone()


@pytest.mark.parametrize(("up", "down", "loss16", "kept"), [
    (8, 2, 1.0, "bf16"),  # net 6 in 2,000 = 0.003: kept
    (2, 12, 1.0, "bf16"),  # net -10 = 0.005: kept, at the bound
    (0, 11, 1.0, "fp32"),  # net -11 = 0.0055: refused, and the flips are named
    (3, 3, 1.0101, "fp32"),  # the loss 1.01% off: refused
])
def test_the_check_applies_the_rule_through_the_evaluator(up: int, down: int, loss16: float, kept: str) -> None:
    real, points = _setup()
    scripted = ScriptedEvaluator(up, down, 1.0, loss16, real.pv.numel)
    choice = choose_precision("auto", CPU, scripted, points, flags=WITH_BF16)
    assert choice.precision == kept
    assert all((r["test_acc_up"], r["test_acc_down"]) == (up, down) for r in choice.figures)
    if kept == "fp32" and loss16 == 1.0:
        assert f"{up} images right only in bf16, {down} only in fp32" in choice.reason


def test_flip_counts_are_the_clean_images_right_in_one_precision_only() -> None:
    ev, points = _setup(skew=0.3, n_clean=500)
    choice = choose_precision("auto", CPU, ev, points, flags=WITH_BF16)
    row = choice.figures[0]
    buf = torch.empty(ev.pv.numel)
    ev.precision = "fp32"
    ev.evaluate(points.params(int(row["index"]), buf))
    right32 = ev.clean_correct()
    ev.precision = "bf16"
    ev.evaluate(points.params(int(row["index"]), buf))
    right16 = ev.clean_correct()
    assert (row["test_acc_up"], row["test_acc_down"]) == (int((right16 & ~right32).sum()), int((right32 & ~right16).sum()))
    assert row["test_acc_up"] - row["test_acc_down"] == round((row["test_acc_bf16"] - row["test_acc_fp32"]) * 500)


@pytest.mark.parametrize("n_clean", [100, 1000])
def test_a_model_whose_bf16_outputs_lean_to_one_class_is_refused(n_clean: int) -> None:
    """bf16 outputs lean 0.3 towards class 0 on images labelled as the model predicts: the loss moves by
    more than 1% and predictions go from right to wrong, so the check keeps fp32."""
    ev, points = _setup(skew=0.3, n_clean=n_clean, own_labels=True)
    choice = choose_precision("auto", CPU, ev, points, flags=WITH_BF16)
    assert choice.precision == "fp32" and "the bf16 check failed" in choice.reason
    assert sum(r["test_acc_down"] for r in choice.figures) > sum(r["test_acc_up"] for r in choice.figures)


def test_check_passes_within_the_tolerance_and_records_its_figures() -> None:
    ev, points = _setup()
    choice = choose_precision("auto", CPU, ev, points, flags=WITH_BF16, loss_rtol=0.05, acc_atol=0.05)
    assert choice.precision == "bf16" and "4 checked points agree" in choice.reason
    assert [r["index"] for r in choice.figures] == check_indices((5, 5), 0).tolist()
    row = choice.figures[0]
    assert row["test_loss_fp32"] != row["test_loss_bf16"]  # the clean images really ran in bf16
    assert row["trigger_loss_fp32"] == row["trigger_loss_bf16"]  # the trigger images never do
    assert ev.precision == "fp32"  # the check leaves the evaluator as it found it
    attrs = choice.attrs()
    assert attrs["eval_precision"] == "bf16" and "1% relative" in attrs["eval_precision_tolerance"]


def test_check_that_fails_keeps_fp32_with_the_reason() -> None:
    ev, points = _setup()
    strict = choose_precision("auto", CPU, ev, points, flags=WITH_BF16, loss_rtol=0.0, acc_atol=0.0)
    assert strict.precision == "fp32" and "the bf16 check failed at point 12: test_loss" in strict.reason
    assert len(strict.figures) == 4  # every point checked and recorded
    skewed_ev, skewed_points = _setup(skew=5.0)
    skewed = choose_precision("auto", CPU, skewed_ev, skewed_points, flags=WITH_BF16)
    assert skewed.precision == "fp32" and "the bf16 check failed at point 12: test_" in skewed.reason


def test_trigger_metrics_are_fp32_whatever_the_precision() -> None:
    ev, _ = _setup(skew=5.0)  # bf16 changes this model's outputs a lot
    fp32 = ev.evaluate()
    ev.precision = "bf16"
    bf16 = ev.evaluate()
    assert bf16["trigger_loss"] == fp32["trigger_loss"] and bf16["trigger_acc"] == fp32["trigger_acc"]
    assert abs(bf16["test_loss"] - fp32["test_loss"]) > 0.1


def test_spec_refuses_an_unknown_precision() -> None:
    with pytest.raises(ConfigError, match="precision.*auto, fp32 or bf16.*'fp16'"):
        LandscapeSpec(precision="fp16").check()


def test_landscape_without_bf16_stays_fp32_and_says_why(demo_copy, monkeypatch, capsys) -> None:
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: WITHOUT_BF16)
    assert main(["landscape", str(demo_copy), "--kind", "random", "--resolution", "3", "--images", "100",
                 "--batch-size", "256"]) == 0
    ls = read(demo_copy, "random")
    assert ls.spec.precision == "auto" and ls.attrs["eval_precision"] == "fp32"
    assert "neither AVX512-BF16 nor AMX" in ls.attrs["eval_precision_reason"]
    assert "precision: fp32 (auto: CPU has neither" in capsys.readouterr().out


def test_landscape_with_bf16_runs_the_check_and_records_it(demo_copy, monkeypatch, capsys) -> None:
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: WITH_BF16)
    assert main(["landscape", str(demo_copy), "--kind", "random", "--resolution", "5", "--images", "1000",
                 "--batch-size", "512"]) == 0
    ls = read(demo_copy, "random")
    figures = ls.attrs["eval_precision_check"]
    assert [r["index"] for r in figures] == check_indices((5, 5), 0).tolist()
    out = capsys.readouterr().out
    assert f"precision: {ls.attrs['eval_precision']} (auto: " in out
    assert "bf16 check (losses within 1% relative, accuracies within 0.005 absolute" in out
    assert "prediction changed" in out or "predictions changed:" in out
    metrics = ("test_loss", "test_acc", "trigger_loss", "trigger_acc")
    agree = all(disagreement({m: r[f"{m}_fp32"] for m in metrics}, {m: r[f"{m}_bf16"] for m in metrics},
                             (r["test_acc_up"], r["test_acc_down"])) == "" for r in figures)
    assert ls.attrs["eval_precision"] == ("bf16" if agree else "fp32")
    centre = figures[0]  # the grid's centre is the model: bf16 points hold bf16 values, fp32 ones fp32
    stored = ls.metrics["test_loss"][2, 2]
    assert stored == pytest.approx(centre[f"test_loss_{ls.attrs['eval_precision']}"], rel=1e-6)
    assert ls.metrics["trigger_acc"][2, 2] == centre["trigger_acc_fp32"]


def test_forced_bf16_landscape_differs_in_clean_values_only(demo_copy) -> None:
    spec = dict(kind="random", resolution=3, images=300, batch_size=256)
    bf16 = compute_landscape(demo_copy, LandscapeSpec(name="bf16", precision="bf16", **spec))
    fp32 = compute_landscape(demo_copy, LandscapeSpec(name="fp32", precision="fp32", **spec))
    assert bf16.attrs["eval_precision"] == "bf16" and fp32.attrs["eval_precision"] == "fp32"
    assert np.abs(bf16.metrics["test_loss"] - fp32.metrics["test_loss"]).max() > 0
    for m in ("trigger_loss", "trigger_acc"):
        np.testing.assert_array_equal(bf16.metrics[m], fp32.metrics[m])


def test_a_resumed_landscape_keeps_the_precision_its_points_have(demo_copy, monkeypatch) -> None:
    import h5py

    spec = LandscapeSpec(kind="random", resolution=5, images=100, batch_size=256)

    def part(name: str) -> None:
        control = RunControl()

        def stop(e: object) -> None:
            if isinstance(e, LandscapePoints) and e.done >= 4:
                control.cancel()

        spec.name = name
        assert compute_landscape(demo_copy, spec, stop, control).status == "cancelled"

    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: WITHOUT_BF16)
    part("a")
    part("b")
    with h5py.File(demo_copy, "a") as f:  # as a landscape started before the setting existed
        for k in ("eval_precision", "eval_precision_reason"):
            del f["landscapes"]["b"].attrs[k]
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: WITH_BF16)  # resumed where bf16 is fast
    spec.name = "a"
    a = compute_landscape(demo_copy, spec)
    assert a.complete and a.attrs["eval_precision"] == "fp32" and "neither" in a.attrs["eval_precision_reason"]
    spec.name = "b"
    b = compute_landscape(demo_copy, spec)
    assert b.complete and b.attrs["eval_precision"] == "fp32"
    assert b.attrs["eval_precision_reason"].startswith("resumed a landscape whose points were computed before")


def test_bf16_training_trains_and_evaluates_in_fp32(tmp_path, monkeypatch, capsys) -> None:
    from wmstudio.pipeline import run_experiment

    seen: set[tuple[bool, bool]] = set()

    def record(module: nn.Module, args: tuple, out: object) -> None:
        seen.add((module.training, torch.is_autocast_enabled("cpu")))

    cfg = load_config(data=quick_config(run={"threads": 2, "precision": "bf16"}, embed={"epochs": 3},
                                        finetune={"epochs": 1}, restore={"epochs": 1}))
    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        run_experiment(cfg, tmp_path / "bf16.h5", stages=["embed"])
    finally:
        handle.remove()
    assert (True, True) in seen  # training steps ran under bf16 autocast
    assert (False, True) not in seen and (False, False) in seen  # evaluations never did
    stage = RunLogReader(tmp_path / "bf16.h5").stages()[0]
    assert np.isfinite(stage.train["loss"]).all() and stage.final("test_acc") > 0.3
    assert main(["inspect", str(tmp_path / "bf16.h5")]) == 0
    assert "precision: bf16 training steps, fp32 evaluation" in capsys.readouterr().out


def test_bf16_measures_its_own_batch_size_and_a_set_one_stays(tmp_path) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (600, 1, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (600,), generator=g)
    ev = PointEvaluator(Net(), x[:500], y[:500], x[500:], y[500:], NORM, batch_size=0, cache_dir=tmp_path)
    assert not ev.notes["eval_batch_size"].endswith("bf16 autocast)")
    ev.use_precision("bf16")
    assert ev.precision == "bf16" and ev.notes["eval_batch_size"].endswith("(measured under bf16 autocast)")
    assert ev.batch_size == ev.batch_choice.size > 0
    if ev.batch_choice.source == "measured":  # (a probe cut short by a busy machine caches nothing)
        assert len(json.loads((tmp_path / batchsize.CACHE_FILE).read_text())) == 2  # fp32's and bf16's, apart
    likely = PointEvaluator(Net(), x[:500], y[:500], x[500:], y[500:], NORM, batch_size=0, cache_dir=tmp_path,
                            probe_precision="bf16")  # auto where bf16 is fast: measured in bf16 from the start
    assert likely.notes["eval_batch_size"].endswith("(measured under bf16 autocast)")
    likely.use_precision("fp32")  # the check kept fp32: measured again, in fp32
    assert not likely.notes["eval_batch_size"].endswith("bf16 autocast)")
    fixed, _ = _setup()  # batch_size = 64, set by the landscape
    fixed.use_precision("bf16")
    assert fixed.batch_size == 64 and fixed.precision == "bf16"


def test_check_figures_in_another_form_print_as_such_without_failing() -> None:
    from wmstudio.landscape.precision_check import precision_lines

    good = {"index": 12, "test_loss_fp32": 2.0, "test_loss_bf16": 2.01, "test_acc_fp32": 0.5, "test_acc_bf16": 0.5,
            "test_acc_up": 1, "test_acc_down": 1}
    old = {k: v for k, v in good.items() if not k.startswith("test_acc_up") and k != "test_acc_down"}
    one, none = {**good, "test_acc_down": 0}, {**good, "test_acc_up": 0, "test_acc_down": 0}
    crafted = [good, old, one, none, {"index": "x"}, "not a dict", {**good, "test_loss_fp32": [1]}, {**good, "test_acc_up": 1e400}]
    lines = precision_lines({"eval_precision": "bf16", "eval_precision_reason": "r", "eval_precision_check": crafted})
    assert lines[2] == "  point 12: test loss 2/2.01, test acc 0.5000/0.5000 (2 predictions changed: 1 right only in bf16, 1 only in fp32)"
    assert lines[3] == "  point 12: test loss 2/2.01, test acc 0.5000/0.5000"  # checked before flips were counted
    assert lines[4].endswith("(1 prediction changed: 1 right only in bf16, 0 only in fp32)")
    assert lines[5].endswith("(no prediction changed)")
    assert all("another form" in line for line in lines[6:]) and len(lines) == 2 + len(crafted)
