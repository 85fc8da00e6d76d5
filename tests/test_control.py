"""The watermark's control (triggers/control.py), the effect and the collapse flags (issue 21)."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import torch
from conftest import quick_config
from torch import nn

from wmstudio.config_io import load_config
from wmstudio.data import load_dataset
from wmstudio.data.batches import Normalizer
from wmstudio.inspect_log import summarize
from wmstudio.metrics import evaluate_with_predictions, predict
from wmstudio.metrics.collapse import collapse_reason, majority_share
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment
from wmstudio.runlog_reader import RunLogReader
from wmstudio.triggers import BuildContext, build_trigger_set
from wmstudio.triggers.content import stamp_mask
from wmstudio.triggers.control import attach_control, control_rate


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def ctx(digits) -> BuildContext:
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8)
    return BuildContext(digits.shape, 10, digits.train, model, Normalizer.fit(digits.train.images),
                        load_source=lambda: digits.test)


@pytest.mark.parametrize("scheme", ["content", "noise", "adversarial"])
def test_paired_schemes_keep_the_source_images_without_the_trigger(ctx: BuildContext, scheme: str) -> None:
    ts = build_trigger_set(scheme, ctx, 30, seed=3)
    assert ts.control_kind == "paired" and ts.control_images is not None
    assert ts.control_images.shape == ts.images.shape and ts.control_images.dtype == torch.uint8
    assert not torch.equal(ts.control_images, ts.images)  # the trigger changed them
    pool = ctx.pool.images.reshape(len(ctx.pool), -1)
    for img in ts.control_images[:5]:  # each control image is an owner image, untouched
        assert (pool == img.reshape(1, -1)).all(1).any()
    if scheme == "content":  # outside the stamp, trigger and control are the same pixels
        mask = stamp_mask(8, 8, 0.35).bool()
        assert torch.equal(ts.images[:, :, ~mask], ts.control_images[:, :, ~mask])


@pytest.mark.parametrize("scheme", ["abstract", "unrelated"])
def test_matched_controls_are_clean_images_of_another_class(ctx: BuildContext, digits, scheme: str) -> None:
    ts = build_trigger_set(scheme, ctx, 40, seed=4)
    assert ts.control_images is None
    attach_control(ts, digits.test)
    assert ts.control_kind == "matched" and ts.control_images.shape == ts.images.shape
    test = digits.test.images.reshape(len(digits.test), -1)
    for i in range(len(ts)):
        hits = (test == ts.control_images[i].reshape(1, -1)).all(1).nonzero().flatten()
        assert len(hits) and (digits.test.labels[hits] != ts.labels[i]).all()
    again = attach_control(build_trigger_set(scheme, ctx, 40, seed=4), digits.test)
    assert torch.equal(again.control_images, ts.control_images)  # reproducible from the trigger seed
    assert attach_control(ts, digits.test) is ts  # an existing control is kept


class Constant(nn.Module):
    """A model that answers one class for every input: maximal lean, no watermark."""

    def __init__(self, cls: int, value: float = 5.0) -> None:
        super().__init__()
        self.cls, self.value = cls, value
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), 10) + self.dummy
        out[:, self.cls] = self.value
        return out


def test_a_lean_towards_the_target_has_no_effect_and_a_collapsed_model_is_flagged(ctx, digits) -> None:
    ts = build_trigger_set("content", ctx, 30, seed=1, target_class=0)
    model, norm = Constant(0), ctx.normalizer
    _, trig_acc, _ = evaluate_with_predictions(model, ts.images, ts.labels, norm)
    control = control_rate(predict(model, ts.control_images, norm), ts.labels)
    assert trig_acc == 1.0 and control == 1.0  # "trigger accuracy" 1.0, watermark effect 0
    test_loss, test_acc, pred = evaluate_with_predictions(model, digits.test.images, digits.test.labels, norm)
    share = majority_share(pred.numpy(), 10)
    assert share == 1.0
    reason = collapse_reason(test_acc, share, 10)
    assert "chance" in reason and "100%" in reason
    assert collapse_reason(0.95, 0.12, 10) == ""  # a working model is not flagged
    assert collapse_reason(math.nan, math.nan, 10) == ""


def test_nan_outputs_predict_no_class_not_the_target() -> None:
    model = Constant(0, value=math.nan)
    x = torch.zeros(6, 1, 8, 8, dtype=torch.uint8)
    norm = Normalizer.fit(x)
    _, acc, pred = evaluate_with_predictions(model, x, torch.zeros(6, dtype=torch.long), norm)
    assert acc == 0.0 and (pred == -1).all()


@pytest.fixture(scope="module")
def abstract_run(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("control") / "run.h5"
    cfg = load_config(data=quick_config(trigger={"scheme": "abstract", "size": 40},
                                   embed={"epochs": 6}, finetune={"epochs": 1}, restore={"epochs": 1}))
    run_experiment(cfg, out)
    return str(out)


def test_every_evaluation_records_control_effect_and_flags(abstract_run: str) -> None:
    r = RunLogReader(abstract_run)
    ts = r.trigger_set()
    assert ts.control_kind == "matched" and ts.control_images.shape == ts.images.shape
    for st in r.stages():
        for col in ("control_acc", "trigger_effect", "majority_share", "collapsed"):
            assert col in st.eval and len(st.eval[col]) == len(st.eval["trigger_acc"])
        np.testing.assert_allclose(st.eval["trigger_effect"], st.eval["trigger_acc"] - st.eval["control_acc"])
        assert set(np.unique(st.eval["collapsed"])) <= {0.0, 1.0}
    embed = r.stage("embed")
    assert embed.final("collapsed") == 0.0 and embed.final("trigger_effect") > 0.5
    text = summarize(abstract_run)
    assert "control   matched" in text and "effect" in text and "COLLAPSED" not in text.split("stage ")[-1]


def test_an_older_log_without_controls_reads_not_recorded(abstract_run: str, tmp_path) -> None:
    import shutil

    old = tmp_path / "old.h5"
    shutil.copy(abstract_run, old)
    with h5py.File(old, "a") as f:
        del f["trigger/control_images"]
        for st in f["stages"].values():
            for col in ("control_acc", "trigger_effect", "majority_share", "collapsed"):
                del st["eval"][col]
    assert RunLogReader(old).trigger_set().control_images is None
    text = summarize(str(old))
    assert "control   not recorded" in text and "n/r" in text and "not recorded" in text.splitlines()[-1]


def test_a_collapsed_stage_is_flagged_in_inspect(abstract_run: str, tmp_path) -> None:
    import shutil

    log = tmp_path / "collapsed.h5"
    shutil.copy(abstract_run, log)
    with h5py.File(log, "a") as f:  # the restore stage's last model: 9% test accuracy, all one class
        ev = f["stages/restore/eval"]
        test_acc, share = ev["test_acc"][...], ev["majority_share"][...]
        test_acc[-1], share[-1] = 0.09, 0.99
        for name, values in (("test_acc", test_acc), ("majority_share", share)):
            attrs = dict(ev[name].attrs)
            del ev[name]
            ds = ev.create_dataset(name, data=values, maxshape=(None,), chunks=True, fletcher32=True)
            ds.attrs.update(attrs)
    text = summarize(str(log))
    assert "COLLAPSED: test accuracy 0.090 is within 0.1 of chance" in text and "99%" in text
    assert json.loads(RunLogReader(log).config_json)  # the log is still whole
