"""What the 2D kinds share: the square box around their models, the stored landscape of a plane, and
the plane and grid points rebuilt from a stored landscape. Imported by the kinds inside their methods
(this module loads PyTorch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from wmstudio.landscape.context import LogContext
from wmstudio.landscape.directions import Plane
from wmstudio.landscape.kinds.base import Created
from wmstudio.landscape.points import GridPoints
from wmstudio.landscape.stage_weights import stage_buffers
from wmstudio.landscape.store import Landscape


def extent(coords: np.ndarray, margin: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square box around the points (axes are true distances, so the picture keeps its aspect)."""
    lo, hi = coords.min(0), coords.max(0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()), 1e-12) * (0.5 + margin)
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)


def plane_landscape(plane: Plane, xs: np.ndarray, ys: np.ndarray, names: list[str], coords: np.ndarray,
                    attrs: dict[str, Any]) -> Created:
    """The empty grid of ``plane`` over ``xs`` × ``ys``, with its models' names and coordinates; the
    stages' trajectories are projected on the plane."""
    arrays = {"x": xs, "y": ys, "model_coords": coords, "origin": plane.origin.cpu().numpy().astype(np.float32),
              "directions": torch.stack([plane.u, plane.v]).cpu().numpy().astype(np.float32)}
    attrs["model_names"] = names
    return Created((len(ys), len(xs)), arrays, attrs, plane)


def stored_plane(vectors: Callable[[], dict[str, np.ndarray]], device: torch.device) -> Plane:
    """The plane of a stored 2D landscape (its origin and two directions), on ``device``."""
    vec = vectors()
    return Plane(torch.from_numpy(vec["origin"]).to(device), torch.from_numpy(vec["directions"][0]).to(device),
                 torch.from_numpy(vec["directions"][1]).to(device))


def anchored_grid(ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
    """The grid of a landscape through its models (plane, displacement): BatchNorm statistics
    interpolated between the models' at their coordinates."""
    plane = stored_plane(vectors, ctx.device)
    return GridPoints(plane, ls.axes["x"], ls.axes["y"], anchor_buffers=[stage_buffers(ctx, m) for m in ls.spec.models],
                      anchor_coords=[tuple(c) for c in ls.model_coords])


def centred_grid(ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> GridPoints:
    """The grid of a landscape around its centre model (pca, hessian): the centre's BatchNorm
    statistics at every point."""
    plane = stored_plane(vectors, ctx.device)
    return GridPoints(plane, ls.axes["x"], ls.axes["y"], buffers=stage_buffers(ctx, ls.spec.center))
