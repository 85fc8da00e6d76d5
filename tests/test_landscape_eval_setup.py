"""Evaluation set-up of a landscape: layout checked, BatchNorm folded or not (with the reason), batch
size measured once then cached; none of it changes the values."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import quick_config
from torch import nn

from tests.conftest import eval_rel
from wmstudio.config_io import load_config
from wmstudio.data.batches import Normalizer
from wmstudio.errors import UntrustedCodeError
from wmstudio.landscape import LandscapeSpec, compute_landscape
from wmstudio.landscape.batchsize import CACHE_FILE, choose_batch_size
from wmstudio.landscape.context import load_context
from wmstudio.landscape.evaluator import PointEvaluator
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.store import read_vectors
from wmstudio.metrics import evaluate
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment

NORM = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def _bn_stats(model: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    for m in model.modules():  # non-trivial statistics, so a wrong fold shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def _data(n: int = 96, side: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)


def _evaluator(model: nn.Module, fmt: torch.memory_format = torch.channels_last, **kw: object) -> PointEvaluator:
    x, y = _data()
    return PointEvaluator(model, x[:80], y[:80], x[80:], y[80:], NORM, fmt, **kw)


def _direct(model: nn.Module) -> list[float]:
    x, y = _data()
    return [*evaluate(model, x[:80], y[:80], NORM), *evaluate(model, x[80:], y[80:], NORM)]


def _values(ev: PointEvaluator, flat: torch.Tensor | None = None) -> list[float]:
    v = ev.evaluate(flat)
    return [v["test_loss"], v["test_acc"], v["trigger_loss"], v["trigger_acc"]]


def test_folded_channels_last_resnet_gives_the_plain_models_values_at_perturbed_points() -> None:
    model = _bn_stats(build_model("resnet20", 3, 10, 16))
    plain = _bn_stats(build_model("resnet20", 3, 10, 16))
    fast = _evaluator(model, batch_size=32)
    slow = _evaluator(_bn_stats(build_model("resnet20", 3, 10, 16)), torch.contiguous_format, fold_bn=False,
                      batch_size=32)
    assert fast.memory_format == torch.channels_last and fast.folded is not None and len(fast.folded.pairs) == 19
    assert fast.notes["eval_layout"].startswith("channels_last")
    assert fast.notes["eval_batchnorm"].startswith("folded 19 ")
    assert slow.folded is None and slow.memory_format == torch.contiguous_format
    center = fast.pv.get()
    g = torch.Generator().manual_seed(3)
    for scale in (0.0, 0.05, 0.2):
        point = center + scale * torch.randn(center.shape, generator=g) * center.abs().mean()
        got, unfolded = _values(fast, point), _values(slow, point)
        ParamVector(plain).set_(point)
        expect = _direct(plain)
        for a, b, c in zip(got, unfolded, expect, strict=True):
            assert a == pytest.approx(c, rel=eval_rel(1e-4), abs=1e-5) and b == pytest.approx(c, rel=eval_rel(1e-4), abs=1e-5)


class FlattensByView(nn.Module):
    """A user's conv net that ``.view()``s its 4-D activation: fails on channels-last input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        return self.fc(x.view(x.size(0), -1))


class ReadsRawMemory(nn.Module):
    """A conv net whose output depends on its activation's memory order (runs in either layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fc(x.as_strided((x.size(0), x[0].numel()), (x[0].numel(), 1)))


class DataDependent(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it, so nothing is folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if x.mean() > 100:
            x = x * 2
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize(("make", "layout", "folding"), [
    (FlattensByView, "NCHW (the model fails on channels-last input", "folded 1 "),
    (ReadsRawMemory, "NCHW (the model's outputs depend on the memory layout", "not folded: no BatchNorm layer"),
    (DataDependent, "channels_last", "not folded: torch.fx cannot trace DataDependent"),
])
def test_models_that_do_not_allow_a_step_fall_back_and_say_why(make, layout: str, folding: str) -> None:
    torch.manual_seed(0)
    model = _bn_stats(make())
    expect = _direct(model)
    ev = _evaluator(model, batch_size=40)
    assert ev.notes["eval_layout"].startswith(layout)
    assert ev.notes["eval_batchnorm"].startswith(folding)
    assert (ev.folded is None) == folding.startswith("not")
    np.testing.assert_allclose(_values(ev), expect, rtol=1e-4, atol=1e-6)


def test_batch_size_is_measured_once_then_cached(tmp_path: Path, monkeypatch) -> None:
    from wmstudio.landscape import batchsize

    monkeypatch.setattr(batchsize, "PROBE_BUDGET_S", 60.0)  # time enough however busy the CPU: the outcome is tested
    monkeypatch.setattr(batchsize, "CHECK_MARGIN", 1e6)  # the cache is tested here; the check of a cached size below
    model = build_model("small_cnn", 3, 10, 16).eval()
    inputs = torch.randn(600, 3, 16, 16)
    first = choose_batch_size(model, model, inputs, "nchw", tmp_path)
    assert first.source == "measured" and first.size in (32, 64, 128, 256, 512, 600)
    assert (tmp_path / CACHE_FILE).is_file() and "measured in" in first.note
    again = choose_batch_size(model, model, inputs, "nchw", tmp_path)
    assert (again.source, again.size) == ("cached", first.size)
    other = choose_batch_size(model, model, inputs[:, :, :8, :8], "nchw", tmp_path)  # another image shape
    assert other.source == "measured"
    (tmp_path / CACHE_FILE).write_text("{not json")  # a broken cache is measured over, not an error
    assert choose_batch_size(model, model, inputs, "nchw", tmp_path).source == "measured"


def test_a_cached_batch_size_that_lost_to_its_neighbours_is_measured_again(tmp_path: Path, monkeypatch) -> None:
    """A size cached while something else ran (or on another day) is checked before use and replaced if slow."""
    import json
    import time

    from wmstudio.landscape import batchsize

    monkeypatch.setattr(batchsize, "PROBE_BUDGET_S", 60.0)
    model = build_model("small_cnn", 3, 10, 16).eval()
    inputs = torch.randn(600, 3, 16, 16)

    def per_call_overhead(x: torch.Tensor) -> None:  # a tiny model: each call costs the same, whatever the batch
        time.sleep(0.003)

    key = batchsize.model_key(model, inputs, "nchw")
    (tmp_path / CACHE_FILE).write_text(json.dumps({key: 32}))
    choice = choose_batch_size(per_call_overhead, model, inputs, "nchw", tmp_path)
    assert choice.source == "measured" and choice.size == 600, choice.note
    assert "the cached 32 ran" in choice.note and "measured again" in choice.note
    assert json.loads((tmp_path / CACHE_FILE).read_text())[key] == 600  # replaced
    again = choose_batch_size(per_call_overhead, model, inputs, "nchw", tmp_path)
    assert (again.source, again.size) == ("cached", 600) and "checked against its neighbours" in again.note


def test_small_batches_are_timed_over_enough_work_to_compare() -> None:
    import time

    from wmstudio.landscape.batchsize import MIN_TIMING_S, time_per_image

    calls: list[int] = []
    t = time.perf_counter()
    per = time_per_image(lambda x: calls.append(len(x)), torch.zeros(4, 1))
    assert len(calls) > 1 and time.perf_counter() - t >= MIN_TIMING_S and per > 0


USER_MODEL = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(16)
            self.fc = nn.Linear(16, num_classes)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.relu(self.bn2(self.conv2(x)))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def make(num_classes):
        return Net(num_classes)
''')


def test_user_model_file_landscape_is_channels_last_folded_and_equals_direct_evaluation(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    from wmstudio.landscape import batchsize

    monkeypatch.setattr(batchsize, "PROBE_BUDGET_S", 60.0)  # time enough however busy the CPU
    monkeypatch.setattr(batchsize, "CHECK_MARGIN", 1e6)  # a busy CPU's noise does not send the cached size back
    (tmp_path / "net.py").write_text(USER_MODEL)
    cfg = load_config(data=quick_config(model={"file": str(tmp_path / "net.py"), "factory": "make"},
                                        embed={"epochs": 2}, finetune={"epochs": 1}, restore={"epochs": 1}))
    log = tmp_path / "user.h5"
    run_experiment(cfg, log)
    with pytest.raises(UntrustedCodeError, match="net.py"):  # the log names code: it runs only when trusted
        compute_landscape(log, LandscapeSpec(kind="random", resolution=5, span=0.5, images=200, seed=2))
    ls = compute_landscape(log, LandscapeSpec(kind="random", resolution=5, span=0.5, images=200, seed=2,
                                              precision="fp32"), trust_code=True)
    assert ls.complete
    assert ls.attrs["eval_layout"].startswith("channels_last") and ls.attrs["eval_batchnorm"].startswith("folded 2 ")
    note = ls.attrs["eval_batch_size"]
    again = compute_landscape(log, LandscapeSpec(kind="random", name="again", resolution=3, images=200, precision="fp32"),
                              trust_code=True)  # fp32 as the first: its cached size (bf16 sizes are cached apart)
    if torch.cuda.is_available():  # a GPU takes its largest candidate size without measuring
        assert "largest candidate" in note and "largest candidate" in again.attrs["eval_batch_size"]
    else:
        assert "measured in" in note and "cached in" in again.attrs["eval_batch_size"]

    ctx = load_context(log, trust_code=True)
    state = ctx.state("restore")
    d1, d2 = (torch.from_numpy(v) for v in read_vectors(log, "random")["directions"])
    fresh = build_model("", 1, 10, 8, file=str(tmp_path / "net.py"), factory="make")
    pv = ParamVector(fresh)
    for i, j in ((2, 2), (0, 4), (3, 1)):
        a, b = float(ls.axes["x"][j]), float(ls.axes["y"][i])
        sd = {k: v.clone() for k, v in state.items()}
        for name, s, shape in pv.slices():
            sd[name] = state[name] + (a * d1[s] + b * d2[s]).view(shape)
        fresh.load_state_dict(sd)
        expect = [*evaluate(fresh, ctx.test.images[:200], ctx.test.labels[:200], ctx.normalizer),
                  *evaluate(fresh, ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)]
        got = [ls.metrics[m][i, j] for m in ("test_loss", "test_acc", "trigger_loss", "trigger_acc")]
        assert got[0] == pytest.approx(expect[0], rel=eval_rel(1e-4)) and got[2] == pytest.approx(expect[2], rel=eval_rel(1e-4))
        assert abs(got[1] - expect[1]) <= 1 / 200 and abs(got[3] - expect[3]) <= 1 / 100


def test_a_probe_the_cpu_is_too_busy_for_takes_the_default_and_caches_nothing(tmp_path: Path) -> None:
    import time

    model = build_model("small_cnn", 3, 10, 16).eval()
    slow = lambda x: time.sleep(0.5)  # noqa: E731 - every batch as slow as on a crowded CPU
    choice = choose_batch_size(slow, model, torch.randn(600, 3, 16, 16), "nchw", tmp_path)
    assert (choice.source, choice.size) == ("default", 128) and "could not compare" in choice.note
    assert choice.seconds < 2.0 and not (tmp_path / CACHE_FILE).exists()
