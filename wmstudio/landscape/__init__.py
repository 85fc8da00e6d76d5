"""Loss landscapes: 1D paths, 2D planes and random slices, trajectories; computed into the run log."""

from __future__ import annotations

from typing import Any

from wmstudio.landscape.spec import KINDS, METRICS, LandscapeSpec

__all__ = ["KINDS", "METRICS", "Landscape", "LandscapeSpec", "compute_landscape", "list_landscapes", "read"]


def __getattr__(name: str) -> Any:
    # compute and store pull in torch and h5py; importing the spec (the CLI's parser does) must not
    if name == "compute_landscape":
        from wmstudio.landscape.compute import compute_landscape

        return compute_landscape
    if name in ("Landscape", "list_landscapes", "read"):
        from wmstudio.landscape import store

        return getattr(store, name)
    raise AttributeError(name)
