"""Grids and the coarse-to-fine order in which their points are computed.

Every point is computed once. Level 0 is a coarse sub-grid (every ``stride``-th index on both
axes, plus the last); each later level halves the stride and adds only the new points, so a viewer
has a whole-surface preview after the first level and a sharper one after each next.
"""

from __future__ import annotations

import numpy as np


def axis_indices(n: int, stride: int) -> np.ndarray:
    idx = list(range(0, n, stride))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return np.asarray(idx, dtype=np.int64)


def first_stride(n: int, coarse: int) -> int:
    """The largest power of two whose sub-grid still has at least ``coarse`` points per axis."""
    stride = 1
    while (n - 1) // (stride * 2) + 1 >= coarse and stride * 2 < n:
        stride *= 2
    return stride


def refinement_levels(ny: int, nx: int, coarse: int = 11) -> list[np.ndarray]:
    """Levels of flat indices ``i * nx + j`` covering the (ny, nx) grid exactly once, coarse first."""
    stride = max(first_stride(ny, coarse), first_stride(nx, coarse))
    seen = np.zeros((ny, nx), dtype=bool)
    levels = []
    while True:
        mask = np.zeros_like(seen)
        mask[np.ix_(axis_indices(ny, stride), axis_indices(nx, stride))] = True
        new = mask & ~seen
        if new.any():
            levels.append(np.flatnonzero(new))
            seen |= new
        if stride == 1:
            break
        stride //= 2
    return levels


def fill_nearest(values: np.ndarray, done: np.ndarray) -> np.ndarray:
    """A full preview of a partial grid: each missing point takes the value of the nearest computed one."""
    if done.all() or not done.any():
        return values.copy()
    ii, jj = np.nonzero(done)
    yy, xx = np.mgrid[0:values.shape[0], 0:values.shape[1]]
    out = values.copy()
    missing = ~done
    my, mx = yy[missing], xx[missing]
    # nearest computed point by index distance, in chunks to bound memory
    result = np.empty(len(my), dtype=values.dtype)
    for start in range(0, len(my), 4096):
        d = (my[start:start + 4096, None] - ii[None]) ** 2 + (mx[start:start + 4096, None] - jj[None]) ** 2
        result[start:start + 4096] = values[ii[d.argmin(1)], jj[d.argmin(1)]]
    out[missing] = result
    return out
