"""Hostile ImageFolder trees and archives: every problem names the file, nothing outside is read."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wmstudio.data import load_dataset
from wmstudio.errors import DataError


def _png(path: Path, w: int = 12, h: int = 12, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _tree(root: Path, classes=("cat", "dog"), n: int = 2) -> Path:
    for split in ("train", "test"):
        for cls in classes:
            for i in range(n):
                _png(root / split / cls / f"{i + 1}.png", seed=i)
    return root


def _load(root: Path, tmp_path: Path, **kw):
    return load_dataset("imagefolder", root, cache_dir=tmp_path / "cache", **kw)


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header promises w x h pixels (a decompression-bomb stand-in: tiny on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def _png_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _good_members() -> dict[str, bytes]:
    return {f"data/{s}/{c}/{i}.png": _png_bytes(i) for s in ("train", "test") for c in ("cat", "dog") for i in range(2)}


def test_corrupt_image_error_names_the_file_not_a_bytes_object(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(DataError) as info:
        _load(root, tmp_path)
    assert str(root / "train" / "dog" / "broken.jpg") in str(info.value) and "BytesIO" not in str(info.value)
    archive = _tar(tmp_path / "t.tar.gz", {**_good_members(), "data/test/cat/bad.png": b"\x89PNG garbage"})
    with pytest.raises(DataError) as info:
        _load(archive, tmp_path)
    assert "t.tar.gz:data/test/cat/bad.png: not a readable image" in str(info.value)
    assert "BytesIO" not in str(info.value)


def test_empty_class_folder_is_refused(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    (root / "train" / "bird").mkdir()
    (root / "train" / "bird" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"train/bird: an empty class folder"):
        _load(root, tmp_path)


def test_empty_class_folder_in_an_archive_is_refused(tmp_path) -> None:
    archive = tmp_path / "t.tar"
    _tar(archive, _good_members())
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("data/train/bird")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    with pytest.raises(DataError, match=r"empty class folder\(s\) train/bird"):
        _load(archive, tmp_path)


def test_train_class_missing_from_test_is_refused(tmp_path) -> None:
    root = _tree(tmp_path / "tree", classes=("cat", "dog", "fox"))
    for f in (root / "test" / "fox").iterdir():
        f.unlink()
    (root / "test" / "fox").rmdir()
    with pytest.raises(DataError, match=r"train classes \['fox'\] have no images under test/"):
        _load(root, tmp_path)


@pytest.mark.parametrize("name", ["../../evil/train/cat/x.png", "/abs/train/cat/x.png", "data/train/../../x.png",
                                  "data/../../train/cat/x.png"])
def test_archive_members_outside_the_tree_are_refused(tmp_path, name: str) -> None:
    archive = _tar(tmp_path / "t.tar.gz", {**_good_members(), name: _png_bytes(5)})
    with pytest.raises(DataError) as info:
        _load(archive, tmp_path)
    assert repr(name) in str(info.value) and "absolute path or '..'" in str(info.value)


@pytest.mark.parametrize("target", ["../../../../etc/passwd", "/etc/passwd"])
def test_archive_links_leaving_the_tree_are_refused(tmp_path, target: str) -> None:
    archive = _tar(tmp_path / "t.tar.gz", _good_members(), {"data/train/cat/link.png": target})
    with pytest.raises(DataError, match=r"data/train/cat/link.png: a link to .*outside the archive"):
        _load(archive, tmp_path)


def test_archive_links_inside_the_tree_are_read(tmp_path) -> None:
    archive = _tar(tmp_path / "t.tar.gz", _good_members(), {"data/train/cat/same.png": "0.png"})
    d = _load(archive, tmp_path)
    assert len(d.train) == 5 and d.warnings == []


def test_symlink_to_a_file_outside_the_tree_is_refused_and_not_read(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    secret = tmp_path / "secret.png"
    _png(secret, seed=9)
    os.symlink(secret, root / "train" / "cat" / "z.png")
    with pytest.raises(DataError) as info:
        _load(root, tmp_path)
    assert f"{root / 'train' / 'cat' / 'z.png'}: a symbolic link to {secret}" in str(info.value)
    assert "outside the data folder" in str(info.value)


def test_symlinked_class_folder_outside_the_tree_is_refused(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    outside = tmp_path / "elsewhere"
    _png(outside / "1.png")
    os.symlink(outside, root / "train" / "bird")
    with pytest.raises(DataError, match=r"train/bird: a symbolic link to .*elsewhere, outside the data folder"):
        _load(root, tmp_path)


def test_symlink_inside_the_tree_is_followed(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    os.symlink(root / "train" / "cat" / "1.png", root / "train" / "cat" / "3.png")
    assert len(_load(root, tmp_path).train) == 5


def test_huge_image_header_is_refused_before_decoding(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    (root / "train" / "cat" / "0_huge.png").write_bytes(_png_header(8000, 8000))
    with pytest.raises(DataError) as info:
        _load(root, tmp_path)
    assert f"{root / 'train' / 'cat' / '0_huge.png'}: 8000x8000 pixels" in str(info.value)
    assert "at most 4096x4096" in str(info.value)


def test_images_take_the_most_common_size_not_the_first_ones(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    _png(root / "train" / "cat" / "0_big.png", 40, 40)  # sorted first
    _png(root / "test" / "dog" / "0_wide.png", 20, 10)  # not square
    d = _load(root, tmp_path)
    assert d.shape == (3, 12, 12) and len(d.train) == 5 and len(d.test) == 5
    assert len(d.warnings) == 1
    assert "2 of 10 images are not 12x12" in d.warnings[0] and "the most common size" in d.warnings[0]
    assert "0_big.png is 40x40" in d.warnings[0]
    again = _load(root, tmp_path)  # from the cache: the warning is kept
    assert again.warnings == d.warnings and np.array_equal(again.train.images.numpy(), d.train.images.numpy())


def test_image_size_resizes_everything_without_a_warning(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    _png(root / "train" / "cat" / "0_wide.png", 30, 7)
    d = _load(root, tmp_path, image_size=16)
    assert d.shape == (3, 16, 16) and d.warnings == []


def test_a_data_set_of_non_square_images_keeps_its_shape(tmp_path) -> None:
    root = tmp_path / "tree"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            _png(root / split / cls / "1.png", 14, 10)
    assert _load(root, tmp_path).shape == (3, 10, 14)


def test_changing_one_file_invalidates_the_cache(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    first = _load(root, tmp_path)
    target = root / "train" / "cat" / "1.png"
    stat = os.stat(root / "train" / "cat")
    _png(target, seed=42)
    os.utime(root / "train" / "cat", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the folder looks untouched
    second = _load(root, tmp_path)
    assert not np.array_equal(first.train.images[0].numpy(), second.train.images[0].numpy())
    assert np.array_equal(second.train.images[0].permute(1, 2, 0).numpy(), np.asarray(Image.open(target)))


def test_a_broken_cache_entry_is_rebuilt(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    good = _load(root, tmp_path)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    np.savez(entry, classes=np.array(["cat"]), warnings=np.array([], dtype=str),
             train_x=np.zeros((1, 2, 2, 3), np.uint8), train_y=np.array([7]),
             test_x=np.zeros((1, 2, 2, 3), np.uint8), test_y=np.array([0]))
    again = _load(root, tmp_path)
    assert np.array_equal(again.train.images.numpy(), good.train.images.numpy())
    entry.write_bytes(b"garbage")
    assert len(_load(root, tmp_path).train) == 4


def test_an_unwritable_cache_is_a_warning_not_a_crash(tmp_path) -> None:
    root = _tree(tmp_path / "tree")
    blocker = tmp_path / "cache_is_a_file"
    blocker.write_text("x")
    d = load_dataset("imagefolder", root, cache_dir=blocker)
    assert len(d.train) == 4 and "could not be cached" in d.warnings[0]


def test_empty_idx_files_are_refused(tmp_path) -> None:
    (tmp_path / "train-images-idx3-ubyte").write_bytes(struct.pack(">HBB3I", 0, 8, 3, 0, 28, 28))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">HBBI", 0, 8, 1, 0))
    with pytest.raises(DataError, match="holds no images"):
        load_dataset("idx", tmp_path)


def test_data_warnings_reach_the_run_log(tmp_path) -> None:
    from wmstudio.config_io import load_config
    from wmstudio.events import Warning as WarningEvent
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog_reader import RunLogReader

    root = _tree(tmp_path / "tree", n=4)
    _png(root / "train" / "cat" / "0_big.png", 20, 20)
    cfg = load_config(data={"run": {"threads": 1, "record_trajectory": False},
                            "data": {"dataset": "imagefolder", "root": str(root), "cache_dir": str(tmp_path / "c"),
                                     "attacker_fraction": 0.3},
                            "trigger": {"scheme": "abstract", "size": 4},
                            "embed": {"epochs": 0}, "finetune": {"enabled": False}, "restore": {"enabled": False}})
    events = []
    run_experiment(cfg, tmp_path / "run.h5", events.append)
    assert any(isinstance(e, WarningEvent) and "most common size" in e.message for e in events)
    assert "most common size" in RunLogReader(tmp_path / "run.h5").data_info()["warnings"][0]


class _RunsCode:
    """A pickle payload: unpickling it would create ``marker`` (it must never be unpickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_cifar_folder_of_crafted_pickles_is_refused_without_running_them(tmp_path) -> None:
    """torchvision's CIFAR reader unpickles its batch files, but only after their MD5 sums match the
    published ones: a folder whose batches are crafted pickles is refused and nothing in them runs."""
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "ran"
    for name in ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(DataError, match=r"cifar10 train split not found"):
        load_dataset("cifar10", str(tmp_path))
    assert not marker.exists()
