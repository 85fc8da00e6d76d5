"""Contour lines of a gridded surface (marching squares, vectorised with numpy) and where to label them.

Plain numpy, so it is tested without a display; the landscape map draws the segments one line
item per level and a label at the spot :func:`label_spots` picks.
"""

from __future__ import annotations

import math

import numpy as np


def nice_levels(lo: float, hi: float, count: int = 8) -> np.ndarray:
    """About ``count`` round values strictly between ``lo`` and ``hi`` (steps of 1, 2, 2.5 or 5 x 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.zeros(0)
    raw = (hi - lo) / max(1, count)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(f * mag for f in (1, 2, 2.5, 5, 10) if f * mag >= raw)
    levels = np.arange(math.ceil(lo / step) * step, hi, step)
    levels = levels[(levels > lo) & (levels < hi)]
    return np.round(levels / step) * step  # 0.30000000000000004 -> 0.3


def contour_segments(x: np.ndarray, y: np.ndarray, v: np.ndarray, level: float) -> np.ndarray:
    """The contour of ``v`` (shape (len(y), len(x))) at ``level`` as line segments, shape (n, 2, 2).

    Each grid cell whose corners lie on both sides of the level gives one segment (two at a
    saddle, split by the cell's mean); cells with a NaN corner give none.
    """
    x, y, v = np.asarray(x, float), np.asarray(y, float), np.asarray(v, float)
    if v.ndim != 2 or min(v.shape) < 2:
        return np.zeros((0, 2, 2))
    a, b, c, d = v[:-1, :-1], v[:-1, 1:], v[1:, 1:], v[1:, :-1]  # corners: (x0,y0) (x1,y0) (x1,y1) (x0,y1)
    valid = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & np.isfinite(d)
    up = [corner > level for corner in (a, b, c, d)]
    shape = a.shape
    x0, x1 = np.broadcast_to(x[:-1][None, :], shape), np.broadcast_to(x[1:][None, :], shape)
    y0, y1 = np.broadcast_to(y[:-1][:, None], shape), np.broadcast_to(y[1:][:, None], shape)

    def frac(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(np.nan_to_num((level - p) / (q - p)), 0.0, 1.0)

    # the crossing point on each edge: bottom, right, top, left
    pts = np.stack([np.stack([x0 + frac(a, b) * (x1 - x0), y0], -1),
                    np.stack([x1, y0 + frac(b, c) * (y1 - y0)], -1),
                    np.stack([x0 + frac(d, c) * (x1 - x0), y1], -1),
                    np.stack([x0, y0 + frac(a, d) * (y1 - y0)], -1)]).reshape(4, -1, 2)
    cross = (np.stack([up[0] != up[1], up[1] != up[2], up[3] != up[2], up[0] != up[3]]) & valid).reshape(4, -1)
    n = cross.sum(0)
    segments = []
    two = np.flatnonzero(n == 2)
    if len(two):
        edges = np.nonzero(cross[:, two].T)[1].reshape(-1, 2)
        segments.append(np.stack([pts[edges[:, 0], two], pts[edges[:, 1], two]], 1))
    four = np.flatnonzero(n == 4)
    if len(four):
        centre_up = ((a + b + c + d) / 4 > level).reshape(-1)[four]
        joined = centre_up == up[0].reshape(-1)[four]  # a and c joined through the centre: cut b and d off
        first = np.where(joined, 1, 3)  # bottom with right (cuts b) or with left (cuts a)
        second = np.where(joined, 3, 1)  # top with left (cuts d) or with right (cuts c)
        segments.append(np.stack([pts[0, four], pts[first, four]], 1))
        segments.append(np.stack([pts[2, four], pts[second, four]], 1))
    return np.concatenate(segments) if segments else np.zeros((0, 2, 2))


def label_spots(levels: list[np.ndarray], extent: tuple[float, float, float, float]) -> list[tuple[float, float] | None]:
    """One label position per level (None for a level without segments), spread over the map.

    Each level's label goes to the midpoint of its segment farthest from the labels placed before
    and from the map's edges (distances in shares of the map's width and height).
    """
    x0, x1, y0, y1 = extent
    w, h = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    placed: list[np.ndarray] = []
    out: list[tuple[float, float] | None] = []
    for segs in levels:
        if not len(segs):
            out.append(None)
            continue
        mid = segs.mean(axis=1)
        mid = mid[:: max(1, len(mid) // 300)]
        u = np.column_stack([(mid[:, 0] - x0) / w, (mid[:, 1] - y0) / h])
        score = np.minimum.reduce([u[:, 0], 1 - u[:, 0], u[:, 1], 1 - u[:, 1]]) * 2
        for p in placed:
            score = np.minimum(score, np.hypot(*(u - p).T))
        k = int(np.argmax(score))
        placed.append(u[k])
        out.append((float(mid[k, 0]), float(mid[k, 1])))
    return out
