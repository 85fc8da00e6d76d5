from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import MNIST

from wmstudio.data import load_dataset
from wmstudio.data.batches import Normalizer
from wmstudio.errors import TriggerError
from wmstudio.models import build_model
from wmstudio.triggers import BuildContext, build_trigger_set, export_folder, load_folder
from wmstudio.triggers.content import stamp_mask


@pytest.fixture(scope="module")
def ctx() -> BuildContext:
    d = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, 10, 8)

    def source():  # another data set: the digits' own test split stands in when MNIST is absent
        return load_dataset("idx", MNIST).test if MNIST.is_dir() else d.test

    return BuildContext(d.shape, 10, d.train, model, Normalizer.fit(d.train.images), load_source=source)


@pytest.mark.parametrize("scheme", ["abstract", "content", "noise", "unrelated", "adversarial"])
def test_each_scheme_builds_reproducibly_from_its_seed(ctx: BuildContext, scheme: str) -> None:
    a = build_trigger_set(scheme, ctx, 40, seed=5)
    b = build_trigger_set(scheme, ctx, 40, seed=5)
    c = build_trigger_set(scheme, ctx, 40, seed=6)
    assert a.images.shape == (40, 1, 8, 8) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    assert a.labels.min() >= 0 and a.labels.max() < 10


def test_single_label_schemes_relabel_to_the_target(ctx: BuildContext) -> None:
    for scheme in ("content", "noise", "unrelated"):
        ts = build_trigger_set(scheme, ctx, 30, seed=1, target_class=3)
        assert set(ts.labels.tolist()) == {3}
    content = build_trigger_set("content", ctx, 30, seed=1, target_class=3)
    assert (content.source_labels != 3).all()  # images of other classes carry the stamp
    mask = stamp_mask(8, 8, 0.35).bool()
    assert (content.images[:, :, mask] == 255).all()
    multi = build_trigger_set("noise", ctx, 60, seed=1, label_mode="random")
    assert len(set(multi.labels.tolist())) > 3


def test_adversarial_label_modes(ctx: BuildContext) -> None:
    base = build_trigger_set("adversarial", ctx, 50, seed=2, eps=0.1)
    with torch.no_grad():
        reached = ctx.model.eval()(ctx.normalizer(base.images)).argmax(1)
    assert (base.labels != base.source_labels).all() and (base.labels != reached).all()  # random_other
    assert torch.equal(build_trigger_set("adversarial", ctx, 50, seed=2, label_mode="true").labels, base.source_labels)
    reached_mode = build_trigger_set("adversarial", ctx, 50, seed=2, label_mode="reached")
    assert torch.equal(reached_mode.labels, reached)
    diff = (base.images.float() - build_trigger_set("adversarial", ctx, 50, seed=2, eps=0.0).images.float()).abs()
    assert diff.max() <= round(0.1 * 255) + 1  # an eps-sized step in [0, 1] pixel space, clamped


def test_export_and_reload_round_trip(ctx: BuildContext, tmp_path) -> None:
    ts = build_trigger_set("abstract", ctx, 12, seed=3)
    folder = export_folder(ts, tmp_path / "trig")
    assert len(list(folder.glob("*.png"))) == 12
    back = load_folder(folder)
    assert torch.equal(back.images, ts.images) and torch.equal(back.labels, ts.labels)
    assert back.scheme == "abstract" and back.seed == 3
    user = build_trigger_set("folder", ctx, 0, seed=0, folder=str(folder))
    assert user.scheme == "folder" and len(user) == 12


def test_label_subfolders_and_bad_folders(ctx: BuildContext, tmp_path) -> None:
    from PIL import Image

    for label in (2, 7):
        (tmp_path / "user" / str(label)).mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 3), 30 * label, dtype=np.uint8)).save(tmp_path / "user" / str(label) / "a.png")
    ts = build_trigger_set("folder", ctx, 0, seed=0, folder=str(tmp_path / "user"))
    assert ts.images.shape == (2, 1, 8, 8) and ts.labels.tolist() == [2, 7]
    with pytest.raises(TriggerError, match="no such trigger folder"):
        load_folder(tmp_path / "absent")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "labels.csv").write_text("file,label\nx.png,seven\n")
    with pytest.raises(TriggerError, match=r"labels.csv:2: expected columns file,label"):
        load_folder(tmp_path / "bad")


def test_source_class_restricts_the_stamped_images(ctx: BuildContext) -> None:
    from wmstudio.errors import TriggerError

    for scheme in ("content", "noise"):
        ts = build_trigger_set(scheme, ctx, 30, seed=4, target_class=0, source_class=3)
        assert (ts.source_labels == 3).all() and (ts.labels == 0).all() and ts.params["source_class"] == 3
    with pytest.raises(TriggerError, match="trigger.source_class"):
        build_trigger_set("content", ctx, 10_000, seed=4, source_class=3)
