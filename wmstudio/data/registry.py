"""One entry point for every data source: ``load_dataset(name, root, ...)``."""

from __future__ import annotations

from pathlib import Path

from wmstudio.data.tensorset import DataPair
from wmstudio.errors import DataError


def load_dataset(name: str, root: str | Path = "", download: bool = False, image_size: int = 0,
                 cache_dir: str | Path | None = None, channels: int = 0) -> DataPair:
    """The data set, every image resized to ``image_size`` (0: kept) with ``channels`` channels (0: kept)."""
    from wmstudio.data.transform import fit_pair

    return fit_pair(_load(name, root, download, image_size, cache_dir), image_size, channels)


def _load(name: str, root: str | Path, download: bool, image_size: int, cache_dir: str | Path | None) -> DataPair:
    if name == "digits":
        from wmstudio.data.builtin import load_digits

        return load_digits()
    if name == "imagefolder":
        from wmstudio.data.imagefolder import load_imagefolder

        return load_imagefolder(root, image_size=image_size, cache_dir=cache_dir or None)
    if name == "idx":
        from wmstudio.data.idx import load_idx

        return load_idx(root)
    from wmstudio.data.torchvision_sets import _NAMES, load_torchvision

    if name in _NAMES:
        return load_torchvision(name, root, download)
    raise DataError(f"unknown data set {name!r}")
