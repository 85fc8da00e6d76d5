"""One entry point for every data source: ``load_dataset(name, root, ...)`` (the sources: catalog.DATASETS)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wmstudio.catalog import DATASETS
from wmstudio.data.tensorset import DataPair
from wmstudio.errors import DataError

DataKey = tuple[str, str, int]
_PROVIDED: dict[DataKey, DataPair] = {}  # data sets handed to this process already decoded (a Ray worker's)


def data_key(name: str, root: str | Path = "", image_size: int = 0) -> DataKey:
    """What identifies a decoded data set: its name, root and the image size it was resized to."""
    return name, str(root), int(image_size)


@contextmanager
def provided(sets: dict[DataKey, DataPair]) -> Iterator[None]:
    """While inside, ``load_dataset`` returns these decoded data sets instead of reading their roots.

    A sweep's Ray workers use it: the driver decodes each data set once and sends it through the
    object store, so a root that exists only on the driver's machine never has to be read on a worker.
    """
    before = dict(_PROVIDED)
    _PROVIDED.update(sets)
    try:
        yield
    finally:
        _PROVIDED.clear()
        _PROVIDED.update(before)


def load_dataset(name: str, root: str | Path = "", download: bool = False, image_size: int = 0,
                 cache_dir: str | Path | None = None, channels: int = 0) -> DataPair:
    """The data set, every image resized to ``image_size`` (0: kept) with ``channels`` channels (0: kept).
    A data set ``provided`` to this process (decoded by a sweep's driver) is used instead of its root."""
    from wmstudio.data.transform import fit_pair

    given = _PROVIDED.get(data_key(name, root, image_size))
    pair = given if given is not None else _load(name, root, download, image_size, cache_dir)
    return fit_pair(pair, image_size, channels)


def _load(name: str, root: str | Path, download: bool, image_size: int, cache_dir: str | Path | None) -> DataPair:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {DATASETS.choices_text()}")
    return DATASETS.get(name).load(name=name, root=root, download=download, image_size=image_size,
                                   cache_dir=cache_dir or None)
