"""Which grid point of the 3D surface is under the mouse: the vertices projected to the screen with
the view's camera matrix, the nearest within a few pixels, the front one where several are.

Plain NumPy (no OpenGL call), so it is tested without a GL context.
"""

from __future__ import annotations

import numpy as np


def project(points: np.ndarray, mvp: np.ndarray, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Widget pixel coordinates (N, 2) of scene points (N, 3), and their distance in front of the camera (the
    clip-space w; NaN behind it). Not the NDC depth: with the far/near ratio of pyqtgraph's camera (10⁶)
    that is within 0.001 of 1 for every point of the scene.

    ``mvp`` is the 4x4 projection x view matrix (row-major, as ``QMatrix4x4.data()`` reshaped and
    transposed gives it); pixel y grows downwards, as Qt's mouse positions do.
    """
    homo = np.column_stack([points, np.ones(len(points))]) @ mvp.T
    w = homo[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        ndc = homo[:, :3] / w[:, None]
    ndc[w <= 0] = np.nan
    px = np.column_stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height])
    return px, np.where(w > 0, w, np.nan)


def pick(points: np.ndarray, mvp: np.ndarray, width: float, height: float, mouse: tuple[float, float],
         radius_px: float = 12.0, depth_tol: float = 0.05) -> int:
    """The index of the point drawn nearest to ``mouse`` within ``radius_px``, the one closest to the camera
    among those within it (those within ``depth_tol`` of the nearest one's distance, relative); -1 when none is."""
    if not len(points):
        return -1
    px, depth = project(points, mvp, width, height)
    dist = np.hypot(px[:, 0] - mouse[0], px[:, 1] - mouse[1])
    near = np.flatnonzero(np.isfinite(dist) & (dist <= radius_px))
    if not len(near):
        return -1
    # a surface hides what lies behind it: of the points under the cursor, the front one is seen
    front = depth[near] <= np.nanmin(depth[near]) * (1 + depth_tol)
    candidates = near[front]
    return int(candidates[np.argmin(dist[candidates])])
