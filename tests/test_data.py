from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from wmstudio.data import load_dataset
from wmstudio.data.batches import Augment, BatchStream, Normalizer, Source, crop_flip
from wmstudio.data.splits import make_splits
from wmstudio.errors import ConfigError, DataError


def test_builtin_digits_are_real_and_split() -> None:
    d = load_dataset("digits")
    assert d.shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.train) + len(d.test) == 1797
    assert d.train.images.dtype == torch.uint8 and int(d.train.images.max()) == 255
    assert set(d.test.labels.tolist()) == set(range(10))


def test_splits_are_disjoint_seeded_and_sized() -> None:
    a = make_splits(1000, 200, seed=3, attacker_fraction=0.25, test_size=50)
    b = make_splits(1000, 200, seed=3, attacker_fraction=0.25, test_size=50)
    c = make_splits(1000, 200, seed=4, attacker_fraction=0.25, test_size=50)
    assert len(a.attacker) == 250 and len(a.owner) == 750 and len(a.test) == 50
    assert not set(a.owner) & set(a.attacker)
    assert all(np.array_equal(x, y) for x, y in zip(a.as_dict().values(), b.as_dict().values(), strict=True))
    assert not np.array_equal(a.attacker, c.attacker)
    s = make_splits(1000, 200, seed=0, attacker_size=100, owner_size=300)
    assert len(s.attacker) == 100 and len(s.owner) == 300
    with pytest.raises(ConfigError, match="data.owner_size"):
        make_splits(1000, 200, seed=0, attacker_size=800, owner_size=300)


def _write_tree(root, n_per_class: int = 3, size: int = 12) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n_per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_imagefolder_tree_and_archive(tmp_path) -> None:
    tree = tmp_path / "tree"
    _write_tree(tree)
    d = load_dataset("imagefolder", tree, cache_dir=tmp_path / "cache")
    assert d.train.classes == ["cat", "dog"] and d.shape == (3, 12, 12)
    assert len(d.train) == 6 and len(d.test) == 6
    first = np.asarray(Image.open(tree / "train" / "cat" / "0.png"))
    assert np.array_equal(d.train.images[0].permute(1, 2, 0).numpy(), first)
    archive = tmp_path / "tree.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="data")
    a = load_dataset("imagefolder", archive, cache_dir=tmp_path / "cache")
    assert torch.equal(a.train.images, d.train.images) and torch.equal(a.test.labels, d.test.labels)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    again = load_dataset("imagefolder", archive, cache_dir=tmp_path / "cache")  # from the cache
    assert torch.equal(again.train.images, d.train.images)
    resized = load_dataset("imagefolder", tree, image_size=8, cache_dir=tmp_path / "cache")
    assert resized.shape == (3, 8, 8)


def test_imagefolder_errors_name_the_path(tmp_path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        load_dataset("imagefolder", tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match=r"flat: no images under train/<class>/"):
        load_dataset("imagefolder", tmp_path / "flat", cache_dir=tmp_path / "c")
    broken = tmp_path / "broken"
    (broken / "train" / "a").mkdir(parents=True)
    (broken / "test" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(broken / "test" / "a" / "ok.png")
    (broken / "train" / "a" / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="not a readable image"):
        load_dataset("imagefolder", broken, cache_dir=tmp_path / "c")


def test_torchvision_names_need_a_root() -> None:
    with pytest.raises(DataError, match="no such folder for cifar10"):
        load_dataset("cifar10", "/nonexistent/cifar")


def test_crop_flip_is_a_real_crop_and_flip() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (64, 3, 10, 10), dtype=torch.uint8)
    flipped = crop_flip(x, Augment(padding=0, flip=True), g)
    for i in range(len(x)):  # every image is itself or its mirror image
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    assert 10 < sum(not torch.equal(flipped[i], x[i]) for i in range(len(x))) < 54
    cropped = crop_flip(x, Augment(padding=2, flip=False), g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        assert any(torch.equal(cropped[i], padded[i, :, dy:dy + 10, dx:dx + 10]) for dy in range(5) for dx in range(5))


def test_batch_stream_mixes_extra_sources_at_the_asked_fraction() -> None:
    g = torch.Generator().manual_seed(0)
    imgs = torch.zeros(100, 1, 4, 4, dtype=torch.uint8)
    trig = torch.full((10, 1, 4, 4), 255, dtype=torch.uint8)
    norm = Normalizer((0.0,), (1.0,))
    stream = BatchStream(Source(imgs, torch.zeros(100, dtype=torch.long)), 32, norm, g,
                         extra=[(Source(trig, torch.ones(10, dtype=torch.long)), 0.2)])
    batches = list(stream)
    assert len(batches) == len(stream) == 4
    x, y = batches[0]
    assert x.shape[0] == 32 + 8 and int(y.sum()) == 8  # 8 / 40 = 0.2 of the batch are triggers
    assert torch.allclose(x[y == 1], torch.ones(1)) and torch.allclose(x[y == 0], torch.zeros(1))
    seen = torch.cat([b[1] for b in batches]).sum()
    assert int(seen) == 32  # 4 batches x 8, cycling through all 10 triggers


def test_normalizer_round_trips_pixels() -> None:
    x = torch.randint(0, 255, (8, 3, 5, 5), dtype=torch.uint8)
    n = Normalizer.fit(x)
    assert torch.allclose(n.pixels(n(x)), x.float() / 255, atol=1e-5)
