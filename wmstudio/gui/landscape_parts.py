"""What the landscape tab's panels share: the values drawn, titles, read-outs and the trajectories shown.

Everything here reads a :class:`~wmstudio.landscape.store.Landscape` and returns plain values; the panels
(``landscape_map``, ``landscape_surface``, ``landscape_path``) draw them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from wmstudio.landscape.figures import LABELS, axis_names
from wmstudio.landscape.spec import METRICS
from wmstudio.landscape.store import Landscape
from wmstudio.status import Status

VISIBLE_SPAN = 0.01  # a trajectory spanning less than this share of the map is a dot: not drawn nor listed
TRAJECTORY_COLORS = {"pretrain": "#bbbbbb", "embed": "#4fc3f7", "finetune": "#ff7043", "restore": "#66bb6a"}


def legend_brush() -> pg.QtGui.QBrush:
    """The legend's box: the plot background, nearly opaque, so its text reads on any colour map."""
    c = pg.mkColor(pg.getConfigOption("background"))
    c.setAlpha(225)
    return pg.mkBrush(c)


def legend_text() -> pg.QtGui.QColor:
    return pg.mkColor(pg.getConfigOption("foreground"))


def map_axis_labels(ls: Landscape) -> tuple[str, str]:
    """The 2D map's axis titles: each axis' name, and on the horizontal one the units both share
    (the full title on the short vertical axis would be cut off)."""
    xname, yname = axis_names(ls)
    units = str(ls.attrs.get("axis_units", ""))
    if not units:
        return f"distance along {xname}", f"distance along {yname}"
    return f"{xname}; both axes: {units}", yname


def progress_words(ls: Landscape, computing: bool) -> str:
    """How much of ``ls`` the views show, for titles: "" when complete, "(filling in)" while this app
    computes it, else the points it holds and why it stopped ("(stopped: 120/441 points)")."""
    if ls.complete:
        return ""
    if computing and ls.status == Status.RUNNING:
        return " (filling in)"
    why = {Status.CANCELLED: "stopped", Status.RUNNING: "partial"}.get(ls.status, ls.status or "partial")
    return f" ({why}: {int(ls.done.sum())}/{ls.done.size} points)"


def shown_values(ls: Landscape, metric: str, log_scale: bool) -> np.ndarray:
    """The drawn array: ``metric``, NaN (drawn as missing: transparent) where not computed yet, log10 of a
    loss when ``log_scale``."""
    v = np.where(ls.done, ls.metrics[metric], np.nan)
    if log_scale and metric.endswith("loss"):
        v = np.log10(np.maximum(v, 1e-8))
    return v


def value_label(metric: str, log_scale: bool) -> str:
    """The drawn value's name, for the colour bars and the title ("log10 trigger-set loss")."""
    return ("log10 " if log_scale and metric.endswith("loss") else "") + LABELS[metric]


def visible_trajectories(ls: Landscape) -> dict[str, np.ndarray]:
    """Stage -> its recorded points ((n, 2), finite) for the trajectories the map shows: those inside the
    grid that span at least ``VISIBLE_SPAN`` of it. One off the map, or a dot at its scale (a path that
    runs across the plane, not in it, as on random directions), is neither drawn nor listed."""
    x, y = ls.axes["x"], ls.axes["y"]
    out = {}
    for stage, tr in ls.trajectories.items():
        xy = np.asarray(tr["xy"], dtype=np.float64).reshape(-1, 2)
        xy = xy[np.isfinite(xy).all(axis=1)]
        inside = xy[(xy[:, 0] >= x[0]) & (xy[:, 0] <= x[-1]) & (xy[:, 1] >= y[0]) & (xy[:, 1] <= y[-1])]
        span = np.ptp(inside, axis=0) if len(inside) else np.zeros(2)
        if len(inside) and (span[0] >= VISIBLE_SPAN * (x[-1] - x[0]) or span[1] >= VISIBLE_SPAN * (y[-1] - y[0])):
            out[stage] = xy
    return out


def point_text(ls: Landscape, i: int, j: int, px: float, py: float) -> str:
    """The read-out of grid point (row i, column j) of ``ls``, at map position (px, py): its coordinates
    and every metric there (the 2D map's and the 3D surface's hover)."""
    names = [name.split(" (")[0] for name in axis_names(ls)]
    parts = [f"{names[0]} {px:.4g}, {names[1]} {py:.4g}"]
    if ls.done[i, j]:
        parts += [f"{LABELS[m]} {ls.metrics[m][i, j]:.4g}" for m in METRICS]
    else:
        parts.append("not computed yet")
    return "   ".join(parts)


def describe(ls: Landscape | None) -> str:
    """The status line for the shown landscape."""
    if ls is None:
        return "no landscape"
    precision = f", {ls.attrs['eval_precision']}" if ls.attrs.get("eval_precision") else ""
    return f"{ls.name} ({ls.kind}): {ls.status}, {int(ls.done.sum())}/{ls.done.size} points{precision}"
