"""One metric of a stored landscape as a coloured triangle mesh: the surface the OBJ and glTF files hold
(``mesh_export``, ``gltf_export``), and the grid and values the VTK files are written from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmstudio.errors import OutputError
from wmstudio.landscape.spec import METRICS
from wmstudio.landscape.store import Landscape


def grid(ls: Landscape) -> tuple[np.ndarray, np.ndarray]:
    """x (nx,) and y (ny,) of the grid; a line landscape is t by a single y = 0."""
    if ls.is_2d:
        return np.asarray(ls.axes["x"], float), np.asarray(ls.axes["y"], float)
    return np.asarray(ls.axes["t"], float), np.zeros(1)


def values(ls: Landscape, metric: str) -> np.ndarray:
    """(ny, nx) values of a metric (a line: one row)."""
    v = np.asarray(ls.metrics[metric], float)
    return v if v.ndim == 2 else v[None, :]


@dataclass
class SurfaceMesh:
    """One metric's surface as triangles: what the OBJ and glTF writers write."""

    positions: np.ndarray  # (n, 3): x, y the direction coefficients, z the metric scaled (see ``header``)
    colours: np.ndarray  # (n, 3) sRGB in [0, 1], from the colour map
    triangles: np.ndarray  # (m, 3) 0-based vertex indices; cells with a missing value left out
    header: str  # what the axes and colours mean, in words


def surface_mesh(ls: Landscape, metric: str, colormap: str = "viridis", log_scale: bool = False,
                 path: str | Path = "") -> SurfaceMesh:
    """z is the metric scaled so that its range spans the grid's larger side (a line landscape has no surface)."""
    if metric not in METRICS:
        raise OutputError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    if not ls.is_2d:
        raise OutputError(f"{path}: landscape {ls.name!r} is a line; a mesh needs a 2D surface (use .vts)")
    import matplotlib

    xs, ys = grid(ls)
    v = values(ls, metric)
    if log_scale:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log10(v)
    ok = np.isfinite(v)
    lo, hi = (float(v[ok].min()), float(v[ok].max())) if ok.any() else (0.0, 1.0)
    span = max(float(xs[-1] - xs[0]), float(ys[-1] - ys[0]), 1e-12)
    scale = span / (hi - lo) if hi > lo else 1.0
    colours = matplotlib.colormaps[colormap](np.clip((np.where(ok, v, lo) - lo) / (hi - lo if hi > lo else 1.0), 0, 1))
    gx, gy = np.meshgrid(xs, ys)
    z = (np.where(ok, v, lo) - lo) * scale
    nx, ny = len(xs), len(ys)
    j, i = np.meshgrid(np.arange(ny - 1), np.arange(nx - 1), indexing="ij")
    a, b, c, d = j * nx + i, j * nx + i + 1, (j + 1) * nx + i + 1, (j + 1) * nx + i
    whole = (ok[:-1, :-1] & ok[:-1, 1:] & ok[1:, 1:] & ok[1:, :-1]).ravel()
    quads = np.stack([a.ravel(), b.ravel(), c.ravel(), d.ravel()], axis=1)[whole]
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
    if not len(triangles):
        raise OutputError(f"{path}: landscape {ls.name!r} has no complete grid cell of {metric} yet (each cell "
                          "needs its four corners computed): no mesh to write")
    header = (f"wmstudio landscape {ls.name!r} ({ls.kind}), metric {metric}{' (log10)' if log_scale else ''}; "
              f"x, y: direction coefficients; z = ({metric} - {lo:.9g}) * {scale:.9g}; colours: {colormap} "
              f"from {lo:.6g} to {hi:.6g}")
    return SurfaceMesh(np.stack([gx.ravel(), gy.ravel(), z.ravel()], axis=1), colours[..., :3].reshape(-1, 3),
                       triangles, header)
