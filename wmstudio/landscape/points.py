"""Where each grid point lies in parameter space (and which BatchNorm statistics it uses).

A ``PointSet`` maps a flat point index to a parameter vector and, where the surface runs between
checkpoints, to running statistics interpolated with the same coefficients, so that at each
checkpoint's own coordinates the evaluated model is exactly that checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wmstudio.landscape.directions import Plane

Buffers = dict[str, torch.Tensor]


def _lerp_buffers(base: Buffers, terms: list[tuple[float, Buffers]]) -> Buffers:
    out = {}
    for k, b0 in base.items():
        v = b0.clone()
        for coef, bk in terms:
            v.add_(bk[k] - b0, alpha=coef)
        if "running_var" in k:
            v.clamp_(min=0)
        out[k] = v
    return out


def _add(base: Buffers, step: Buffers) -> Buffers:
    return {k: v + step[k] if k in step else v for k, v in base.items()}


@dataclass
class GridPoints:
    """The (ny, nx) grid ``plane.origin + x[j] * u + y[i] * v``; flat index ``i * nx + j``."""

    plane: Plane
    x: np.ndarray
    y: np.ndarray
    buffers: Buffers | None = None  # fixed statistics (random/pca: the centre's)
    anchor_buffers: list[Buffers] | None = None  # plane: the three models' statistics
    anchor_coords: list[tuple[float, float]] | None = None
    # random with dir_type=states: the statistics move along these from ``buffers`` (x along the first, y the second)
    buffer_directions: tuple[Buffers, Buffers] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y), len(self.x)

    def __len__(self) -> int:
        return len(self.x) * len(self.y)

    def coords(self, k: int) -> tuple[float, float]:
        i, j = divmod(int(k), len(self.x))
        return float(self.x[j]), float(self.y[i])

    def params(self, k: int, out: torch.Tensor) -> torch.Tensor:
        return self.plane.point(*self.coords(k), out=out)

    def stats(self, k: int) -> Buffers | None:
        if self.buffer_directions is not None and self.buffers is not None:
            x, y = self.coords(k)
            return _lerp_buffers(self.buffers, [(x, _add(self.buffers, self.buffer_directions[0])),
                                                (y, _add(self.buffers, self.buffer_directions[1]))])
        if self.anchor_buffers is None or self.anchor_coords is None:
            return self.buffers
        x, y = self.coords(k)
        (x0, y0), (x1, y1), (x2, y2) = self.anchor_coords
        # barycentric coefficients s, t with p = p0 + s (p1 - p0) + t (p2 - p0)
        m = np.array([[x1 - x0, x2 - x0], [y1 - y0, y2 - y0]], dtype=np.float64)
        s, t = np.linalg.solve(m, np.array([x - x0, y - y0]))
        b0, b1, b2 = self.anchor_buffers
        return _lerp_buffers(b0, [(float(s), b1), (float(t), b2)])


class AlongT:
    """A 1D landscape's point set: one point per value of ``t``, its shape and length from it."""

    t: np.ndarray

    @property
    def shape(self) -> tuple[int]:
        return (len(self.t),)

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class LinePoints(AlongT):
    """Points along the polyline through checkpoints: ``w[seg] + frac * (w[seg+1] - w[seg])``."""

    anchors: list[torch.Tensor]
    anchor_buffers: list[Buffers]
    segment: np.ndarray
    frac: np.ndarray
    t: np.ndarray  # distance along the path from the first checkpoint (negative before it)

    def params(self, k: int, out: torch.Tensor) -> torch.Tensor:
        seg, f = int(self.segment[k]), float(self.frac[k])
        a, b = self.anchors[seg], self.anchors[seg + 1]
        torch.sub(b, a, out=out)
        return out.mul_(f).add_(a)

    def stats(self, k: int) -> Buffers | None:
        if not self.anchor_buffers or not self.anchor_buffers[0]:
            return None
        seg, f = int(self.segment[k]), min(max(float(self.frac[k]), 0.0), 1.0)
        return _lerp_buffers(self.anchor_buffers[seg], [(f, self.anchor_buffers[seg + 1])])


@dataclass
class AxisPoints(AlongT):
    """Points ``origin + t[k] * direction`` along one direction (hessian_line), the statistics fixed."""

    origin: torch.Tensor
    direction: torch.Tensor
    t: np.ndarray
    buffers: Buffers | None = None

    def params(self, k: int, out: torch.Tensor) -> torch.Tensor:
        return torch.add(self.origin, self.direction, alpha=float(self.t[k]), out=out)

    def stats(self, k: int) -> Buffers | None:
        return self.buffers


def line_layout(anchors: list[torch.Tensor], per_segment: int, extend: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Segment, fraction and path distance of every point, plus the checkpoints' distances."""
    lengths = [float((b - a).double().norm()) for a, b in zip(anchors[:-1], anchors[1:], strict=True)]
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    seg, frac = [], []
    n_ext = int(round(per_segment * extend))
    for i in range(n_ext, 0, -1):  # before the first checkpoint
        seg.append(0)
        frac.append(-extend * i / n_ext)
    last = len(lengths) - 1
    for s in range(len(lengths)):
        count = per_segment if s < last else per_segment + 1
        for i in range(count):
            seg.append(s)
            frac.append(i / per_segment)
    for i in range(1, n_ext + 1):  # past the last checkpoint
        seg.append(last)
        frac.append(1.0 + extend * i / n_ext)
    seg_a, frac_a = np.asarray(seg, dtype=np.int64), np.asarray(frac, dtype=np.float64)
    t = starts[seg_a] + frac_a * np.asarray(lengths)[seg_a]
    return seg_a, frac_a, t, starts
