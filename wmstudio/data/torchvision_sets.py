"""torchvision's data sets by name, read from a local root (downloaded only when asked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wmstudio.data.tensorset import DataPair, ImageTensors
from wmstudio.errors import DataError

# the catalog's torchvision data sets (catalog.DATASETS) -> torchvision's class names
TORCHVISION_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "mnist": "MNIST",
                       "fashion-mnist": "FashionMNIST", "svhn": "SVHN"}


def _split(name: str, root: Path, train: bool, download: bool) -> ImageTensors:
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_CLASSES[name])
    split_name = "train" if train else "test"
    try:
        if name == "svhn":
            ds = cls(str(root), split=split_name, download=download)
            return ImageTensors.from_numpy(ds.data, ds.labels, [str(i) for i in range(10)],
                                           f"svhn/{split_name}", layout="NCHW")
        ds = cls(str(root), train=train, download=download)
    except RuntimeError as exc:
        hint = "" if download else "; set download = true (needs network) or point root at a copy"
        raise DataError(f"{root}: {name} {split_name} split not found ({exc}){hint}") from exc
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    layout = "NHW" if data.ndim == 3 else "NHWC"
    return ImageTensors.from_numpy(data, np.asarray(ds.targets), list(ds.classes), f"{name}/{split_name}", layout)


def load_torchvision(name: str, root: str | Path, download: bool = False) -> DataPair:
    if name not in TORCHVISION_CLASSES:
        raise DataError(f"unknown torchvision data set {name!r}; known: {', '.join(TORCHVISION_CLASSES)}")
    path = Path(root or ".").expanduser()
    if not download and not path.is_dir():
        raise DataError(f"{path}: no such folder for {name} (set data.root, or download = true when online)")
    return DataPair(_split(name, path, True, download), _split(name, path, False, download), name)
