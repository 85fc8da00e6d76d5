"""One entry point for every data source: ``load_dataset(name, root, ...)``."""

from __future__ import annotations

from pathlib import Path

from wmstudio.data.tensorset import DataPair
from wmstudio.errors import DataError


def load_dataset(name: str, root: str | Path = "", download: bool = False, image_size: int = 0,
                 cache_dir: str | Path | None = None) -> DataPair:
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
