"""Loss landscapes: 1D paths, 2D planes and random slices, trajectories; computed into the run log."""

from wmstudio.landscape.compute import compute_landscape
from wmstudio.landscape.spec import KINDS, METRICS, LandscapeSpec
from wmstudio.landscape.store import Landscape, list_landscapes, read

__all__ = ["KINDS", "METRICS", "Landscape", "LandscapeSpec", "compute_landscape", "list_landscapes", "read"]
