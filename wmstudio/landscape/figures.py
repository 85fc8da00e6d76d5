"""Publication figures of stored landscapes (PNG, SVG, PDF), drawn headless with matplotlib.

Used by ``wmstudio export``; needs no display and no Qt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wmstudio.errors import ConfigError
from wmstudio.landscape.kinds.base import stored_kind
from wmstudio.landscape.spec import METRICS
from wmstudio.landscape.store import Landscape
from wmstudio.metric_names import SURFACE_LABELS

LABELS = SURFACE_LABELS
MODEL_STYLE = {"embed": ("*", "watermarked"), "finetune": ("X", "fine-tuned"), "restore": ("o", "restored"),
               "pretrain": ("s", "clean")}
FORMATS = (".png", ".svg", ".pdf")


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def axis_names(ls: Landscape) -> tuple[str, str]:
    """The names of a 2D landscape's axes; for PCA with the share of the trajectory's variance each
    explains (recorded by the engine as ``explained_variance``); the Hessian and displacement kinds
    record theirs (``axis_names``: the eigenvector and its eigenvalue, the stages of each displacement)."""
    named = ls.attrs.get("axis_names")
    if isinstance(named, list) and len(named) == 2 and all(isinstance(n, str) for n in named):
        return named[0], named[1]
    own = stored_kind(ls.kind).axis_names(ls.attrs)
    if own is not None:
        return own
    return "direction 1", "direction 2"


def axis_labels(ls: Landscape) -> tuple[str, str]:
    """The titles of a 2D landscape's axes with their units (``axis_units``, the same on both)."""
    units = str(ls.attrs.get("axis_units", ""))
    return tuple(f"{n}: {units}" if units else f"distance along {n}" for n in axis_names(ls))  # type: ignore[return-value]


def _title(ls: Landscape, metric: str) -> str:
    partial = "" if ls.complete else f"  (partial: {int(ls.done.sum())}/{ls.done.size} points)"
    return f"{LABELS[metric]}: {ls.kind} landscape '{ls.name}'{partial}"


def export_figure(ls: Landscape, metric: str, out: str | Path, style: str = "contour", log_scale: bool = False,
                  dpi: int = 150, overwrite: bool = False) -> Path:
    """Write one figure of ``metric`` from a stored landscape; the format follows the file suffix.

    An existing ``out`` is refused unless ``overwrite``; the file is written aside and renamed, never
    through a link (``safe_files.atomic_output``)."""
    from wmstudio.safe_files import atomic_output, check_target

    if metric not in METRICS:
        raise ConfigError("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    if style not in ("contour", "surface"):
        raise ConfigError("style", f"must be contour or surface, got {style!r}")
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError("out", f"{out}: the file name must end in {', '.join(FORMATS)}")
    check_target(out, overwrite)
    plt = _pyplot()
    values = np.ma.masked_invalid(ls.metrics[metric])
    if log_scale and metric.endswith("loss"):
        values = np.ma.log10(np.ma.maximum(values, 1e-8))
    label = ("log10 " if log_scale and metric.endswith("loss") else "") + LABELS[metric]
    if not ls.is_2d:
        fig = _line_figure(plt, ls, metric, log_scale)
    elif style == "surface":
        fig = plt.figure(figsize=(7, 5.5))
        ax = fig.add_subplot(projection="3d")
        xx, yy = np.meshgrid(ls.axes["x"], ls.axes["y"])
        surf = ax.plot_surface(xx, yy, values.filled(np.nan), cmap="viridis", linewidth=0, antialiased=True)
        fig.colorbar(surf, ax=ax, shrink=0.6, label=label)
        xlabel, ylabel = axis_labels(ls)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        ax.set_zlabel(label)
        ax.set_title(_title(ls, metric), fontsize=9)
    else:
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        x, y = ls.axes["x"], ls.axes["y"]
        cs = ax.contourf(x, y, values, levels=30, cmap="viridis")
        ax.contour(x, y, values, levels=12, colors="white", linewidths=0.4, alpha=0.6)
        fig.colorbar(cs, ax=ax, label=label)
        for stage, tr in ls.trajectories.items():
            xy = tr["xy"]
            ax.plot(xy[:, 0], xy[:, 1], "-", lw=1.2, marker=".", ms=3, label=f"{stage} path")
        for name, (mx, my) in zip(ls.model_names, ls.model_coords, strict=False):
            marker, text = MODEL_STYLE.get(name, ("D", name))
            ax.plot(mx, my, marker, color="red", ms=10, mec="white")
            ax.annotate(text, (mx, my), textcoords="offset points", xytext=(6, 6), color="white", fontsize=9)
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(y[0], y[-1])
        if stored_kind(ls.kind).equal_aspect:
            ax.set_aspect("equal")
        xlabel, ylabel = axis_labels(ls)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(_title(ls, metric), fontsize=9)
        if ls.trajectories:
            ax.legend(fontsize=7, loc="best", framealpha=0.6)
    fig.tight_layout()
    try:
        with atomic_output(out, overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return out


def _line_figure(plt, ls: Landscape, metric: str, log_scale: bool):  # noqa: ANN001, ANN202
    fig, ax = plt.subplots(figsize=(7, 4))
    t = ls.axes["t"]
    other = metric.replace("test", "trigger") if metric.startswith("test") else metric.replace("trigger", "test")
    for m, color in ((metric, "C0"), (other, "C1")):
        ax.plot(t, ls.metrics[m], color=color, label=LABELS[m])
        if ls.line_metrics:  # a curve: the straight segment between the same models, dashed
            ax.plot(t, ls.line_metrics[m], color=color, ls="--", label=f"{LABELS[m]}, straight line")
    if log_scale and metric.endswith("loss"):
        ax.set_yscale("log")
    for name, pos in zip(ls.model_names, ls.model_coords, strict=False):
        ax.axvline(pos, color="grey", ls="--", lw=0.8)
        ax.annotate(MODEL_STYLE.get(name, ("", name))[1], (pos, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel(stored_kind(ls.kind).path_label(ls.attrs))
    ax.set_ylabel("loss" if metric.endswith("loss") else "accuracy")
    ax.set_title(_title(ls, metric), fontsize=9)
    ax.legend(fontsize=8)
    return fig
