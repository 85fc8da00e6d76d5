"""Draws a ``FigureSpec`` with matplotlib in an ``ExportStyle`` and writes it as PNG, SVG or PDF.

Matplotlib's own figure and Agg canvas are used (never pyplot), so this runs inside the Qt app as
well as headless. SVG files hold plain paths with their stroke widths in the file's own units (no
``vector-effect``), texts as outlines, and each heat map as an image resampled at the style's DPI
(cells stay sharp in browsers); PDF files embed their fonts. The same data therefore opens alike in
librsvg, Inkscape, browsers and PDF viewers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.errors import ConfigError
from wmstudio.figures.spec import FigureSpec, Line, Panel
from wmstudio.figures.style import EXPORT_FORMATS, ExportStyle

PT_PER_PX = 0.75  # a screen pixel (1/96 inch) in points (1/72 inch)
MAX_NAMED_TICKS = 24  # at most this many fixed tick labels (a heat map's layer names) on an axis
MIN_ASPECT = 0.45  # a wide, flat plot on screen is exported at least this high for its width


def rc_params(style: ExportStyle) -> dict[str, Any]:
    c = style.colors
    return {"font.family": [style.font_family, "DejaVu Sans"], "font.size": style.font_size,
            "text.color": c["foreground"], "axes.labelcolor": c["foreground"], "axes.edgecolor": c["foreground"],
            "xtick.color": c["foreground"], "ytick.color": c["foreground"], "axes.facecolor": c["background"],
            "figure.facecolor": c["background"], "savefig.facecolor": c["background"],
            "svg.fonttype": "path", "svg.hashsalt": "wmstudio", "pdf.fonttype": 42, "axes.titlesize": style.font_size * 1.1,
            "legend.fontsize": style.font_size * 0.85, "axes.formatter.useoffset": False}


def build(spec: FigureSpec, style: ExportStyle) -> Any:  # noqa: ANN401 - a matplotlib Figure
    """The matplotlib figure of ``spec`` (call inside ``matplotlib.rc_context(rc_params(style))``)."""
    from matplotlib.figure import Figure

    if not spec.panels:
        raise ConfigError("figure", "has no panels to draw")
    height = style.width_in * min(1.5, max(MIN_ASPECT, spec.aspect))
    fig = Figure(figsize=(style.width_in, height), dpi=style.dpi, layout="constrained")
    axes = fig.subplots(len(spec.panels), 1, squeeze=False, sharex=spec.share_x,
                        gridspec_kw={"height_ratios": [max(0.05, p.height) for p in spec.panels]})[:, 0]
    titles = [_panel(fig, ax, panel, style) for ax, panel in zip(axes, spec.panels, strict=True)]
    fit_texts(fig, titles)
    return fig


def fit_texts(fig: Any, titles: list[Any]) -> None:  # noqa: ANN401 - a matplotlib Figure
    """Breaks each axis title and panel title that would run past its room into lines at spaces: an x
    title within its panel's width, a y title within its height, a title about as wide as its panel and
    within the figure (``titles``: the panels' title texts). Matplotlib never wraps them itself: a long title ran off the figure and was cut off in every
    export (the 2D map's x title with its units)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    for _ in range(4):  # wrapped titles are taller: the layout moves the panels, so measure again
        fig.draw_without_rendering()
        renderer = canvas.get_renderer()
        changed = False
        for ax in fig.axes:
            box = ax.get_window_extent(renderer)
            changed |= _wrap(ax.xaxis.label, box.width, renderer)
            changed |= _wrap(ax.yaxis.label, box.height, renderer)
        for title in titles:
            box = title.axes.get_window_extent(renderer)
            changed |= _wrap(title, min(box.width * 1.15, fig.bbox.width - box.x0), renderer)
        if not changed:
            return


def _wrap(text: Any, room_px: float, renderer: Any) -> bool:  # noqa: ANN401
    """Breaks ``text`` (a matplotlib Text) into lines at spaces so each fits ``room_px``; True if it changed."""
    import textwrap

    s = text.get_text()
    if not s or room_px <= 0:
        return False
    size = text.get_window_extent(renderer)
    extent = size.width if text.get_rotation() % 180 == 0 else size.height
    if extent <= room_px:
        return False
    longest = max(len(line) for line in s.split("\n"))
    chars = max(8, int(longest * room_px / extent * 0.97))
    while chars >= 8:
        wrapped = "\n".join(textwrap.fill(line, chars, break_long_words=False, break_on_hyphens=False) for line in s.split("\n"))
        text.set_text(wrapped)
        size = text.get_window_extent(renderer)
        if (size.width if text.get_rotation() % 180 == 0 else size.height) <= room_px:
            break
        chars = int(chars * 0.9)
    return True


def write(spec: FigureSpec, path: str | Path, style: ExportStyle | None = None, overwrite: bool = False) -> Path:
    """``spec`` drawn in ``style`` to ``path`` (.png, .svg or .pdf). An existing file is replaced only with
    ``overwrite``; written aside and renamed, never through a link (``safe_files.atomic_output``)."""
    import matplotlib

    from wmstudio.safe_files import atomic_output

    style = style or ExportStyle()
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError("out", f"{path}: figures export to {', '.join('.' + f for f in EXPORT_FORMATS)}")
    with matplotlib.rc_context(rc_params(style)):
        fig = build(spec, style)
        metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else {}
        if fmt in ("svg", "pdf"):
            metadata["Title"] = path.stem
        if fmt == "svg":
            metadata["Description"] = spec.description
        with atomic_output(path, overwrite) as tmp:
            fig.savefig(tmp, format=fmt, dpi=style.dpi, metadata=metadata)
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise OSError(f"{path}: the exporter wrote nothing")
    return path


def _width(px: float) -> float:
    return max(0.5, px) * PT_PER_PX


def _line(ax: Any, line: Line) -> None:  # noqa: ANN401
    x, y = np.asarray(line.x, dtype=float), np.asarray(line.y, dtype=float)
    if line.pairs:
        from matplotlib.collections import LineCollection

        n = min(len(x), len(y)) // 2 * 2
        segs = np.stack([x[:n], y[:n]], axis=1).reshape(-1, 2, 2)
        ax.add_collection(LineCollection(segs, colors=[line.color], alpha=line.alpha, linewidths=_width(line.width),
                                         linestyles=line.dash, zorder=line.z), autolim=False)
        return
    ax.plot(x, y, color=line.color, alpha=line.alpha, lw=_width(line.width), ls=line.dash, marker=line.marker,
            ms=line.marker_size * PT_PER_PX, mec=line.color, mfc=line.color, label=line.label or None, zorder=line.z)


def _in_between_labels(ax: Any) -> Any:  # noqa: ANN401 - a matplotlib Formatter
    """Minor-tick labels of a log axis: 2 and 5 x each decade ("2·10³") where the range spans two decades or
    less, as the app's decade axis labels them; none otherwise (the decades alone read well)."""
    import math

    from matplotlib.ticker import FuncFormatter

    def label(v: float, _pos: int | None) -> str:
        lo, hi = sorted(ax.get_ylim())
        if v <= 0 or lo <= 0 or math.log10(hi / lo) > 2.0:
            return ""
        exponent = math.floor(math.log10(v) + 1e-9)
        mantissa = round(v / 10 ** exponent)
        if mantissa not in (2, 5):
            return ""
        return f"${mantissa}$" if exponent == 0 else f"${mantissa}\\cdot10^{{{exponent}}}$"

    return FuncFormatter(label)


def _panel(fig: Any, ax: Any, p: Panel, style: ExportStyle) -> Any:  # noqa: ANN401 - returns the title's Text
    from matplotlib.colors import ListedColormap

    c, fs = style.colors, style.font_size
    if p.xlog:
        ax.set_xscale("log")
    if p.ylog:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(_in_between_labels(ax))
    if p.raster is not None:
        r = p.raster
        image = ax.imshow(np.ma.masked_invalid(r.values), origin="lower", extent=r.extent, aspect="auto",
                          cmap=ListedColormap(np.clip(r.colors, 0, 1)), vmin=r.levels[0], vmax=r.levels[1],
                          interpolation="nearest", zorder=1)
        bar = fig.colorbar(image, ax=ax, orientation="horizontal" if r.horizontal_bar else "vertical",
                           fraction=0.08 if r.horizontal_bar else 0.05, pad=0.02)
        bar.set_label(r.label)
        bar.outline.set_edgecolor(c["foreground"])
    for line in p.lines:
        _line(ax, line)
    for rule in p.rules:
        (ax.axvline if rule.vertical else ax.axhline)(rule.at, color=rule.color, lw=_width(rule.width), ls=rule.dash,
                                                      zorder=1.5)
    for m in p.marks:
        for marker in dict.fromkeys(m.markers):
            keep = np.asarray([k == marker for k in m.markers])
            ax.scatter(np.asarray(m.x)[keep], np.asarray(m.y)[keep], marker=marker, s=(m.size * PT_PER_PX) ** 2,
                       c=m.face, edgecolors=m.edge, linewidths=_width(m.edge_width), zorder=m.z)
    for t in p.texts:
        ha = "left" if t.anchor[0] <= 0.25 else "right" if t.anchor[0] >= 0.75 else "center"
        va = "top" if t.anchor[1] <= 0.25 else "bottom" if t.anchor[1] >= 0.75 else "center"
        box = {"boxstyle": "square,pad=0.15", "facecolor": t.box, "alpha": t.box_alpha, "lw": 0} if t.box else None
        offset = ({"left": 4, "right": -4, "center": 0}[ha], {"bottom": 3, "top": -3, "center": 0}[va])
        ax.annotate(t.text, (t.x, t.y), xytext=offset, textcoords="offset points", color=t.color, ha=ha, va=va,
                    bbox=box, fontsize=fs * 0.85, zorder=t.z, annotation_clip=True)
    if p.equal_aspect and p.raster is not None:  # a map: its cells fill the panel
        ax.set_xlim(*p.raster.extent[:2])
        ax.set_ylim(*p.raster.extent[2:])
    else:
        if p.xlim is not None:
            ax.set_xlim(*p.xlim)
        if p.ylim is not None:
            ax.set_ylim(*p.ylim)
    if p.y_inverted:
        ax.invert_yaxis()
    if p.equal_aspect:
        ax.set_aspect("equal", adjustable="box")
    if p.yticks is not None:
        ticks = p.yticks[::max(1, math.ceil(len(p.yticks) / MAX_NAMED_TICKS))]  # names that never overlap
        ax.set_yticks([v for v, _ in ticks], [t for _, t in ticks])
    if p.xticks is not None:
        ax.set_xticks([v for v, _ in p.xticks], [t for _, t in p.xticks])
    if p.grid:
        ax.grid(True, color=c["grid"], lw=0.5, alpha=0.7)
        ax.set_axisbelow(True)
    ax.set_xlabel(p.xlabel)
    ax.set_ylabel(p.ylabel)
    rows = _top_names(ax, p, fs)
    title = ax.set_title(p.title, loc="left", pad=4 + rows * fs * 1.3)
    handles = [h for h in ax.get_lines() if not h.get_label().startswith("_")]
    if handles and p.raster is None:  # below the panel: a legend never hides a curve
        from matplotlib.transforms import ScaledTranslation

        below = (3.4 if p.xlabel else 2.0) * fs / 72  # inches: under the tick labels and the axis title
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 3), frameon=False,
                  bbox_transform=ax.transAxes + ScaledTranslation(0, -below, fig.dpi_scale_trans),
                  labelcolor=c["foreground"], borderaxespad=0.0)
    elif handles:  # on a heat map (its colour bar takes the right): where it covers the fewest points
        ax.legend(loc="best", facecolor=c["background"], edgecolor=c["grid"], framealpha=0.85,
                  labelcolor=c["foreground"])
    return title


def _top_names(ax: Any, p: Panel, fs: float) -> int:  # noqa: ANN401
    """Stage (or model) names above the panel at their x, in two staggered rows; returns the rows used."""
    if not p.top_names:
        return 0
    lo, hi = ax.get_xlim()
    lo, hi = min(lo, hi), max(lo, hi)
    names = sorted(p.top_names)
    for k, (x, text) in enumerate(names):
        end = names[k + 1][0] if k + 1 < len(names) else math.inf
        if end <= lo or x >= hi:
            continue
        row = k % 2
        ax.annotate(text, (max(x, lo), 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2 + row * fs * 1.25),
                    textcoords="offset points", fontsize=fs * 0.85, ha="left", va="bottom", annotation_clip=False)
        ax.annotate("", (max(x, lo), 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2 + (row + 1) * fs * 1.25),
                    textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "#888888"},
                    annotation_clip=False)
    return 2
