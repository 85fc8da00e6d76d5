"""Exporting plots as PNG, SVG or PDF files that look the same in every viewer.

A plot (or a layout of plots sharing an x axis, such as the 1D path) is read into a Qt-free
``FigureSpec`` (``export_spec``: the full data of its curves, its marks, texts and heat maps, its
titles, ranges and scales) and drawn by matplotlib in an ``ExportStyle`` (``wmstudio.figures``):
light by default whatever the app's theme, with the chosen font and size. Qt's own SVG output is not
used: it draws lines with ``vector-effect: non-scaling-stroke`` inside scaled groups, which librsvg
and ImageMagick draw as thick bands, and browsers lose parts of it. Items that follow the mouse
are never exported.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg

from wmstudio.figures.render import write
from wmstudio.figures.style import EXPORT_FORMATS, ExportStyle
from wmstudio.gui.export_spec import figure_of


def export_plot(item: pg.PlotItem | pg.GraphicsLayout, path: str | Path, style: ExportStyle | None = None,
                overwrite: bool = False) -> Path:
    """One plot to ``path``; the format follows the suffix (.png, .svg or .pdf).

    An existing file is replaced only with ``overwrite`` (the app asks first); the file is written aside
    and renamed, never through a link (``wmstudio.safe_files.atomic_output``)."""
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in EXPORT_FORMATS:
        raise ValueError(f"{path}: plots export to {', '.join('.' + f for f in EXPORT_FORMATS)}")
    return write(figure_of(item), path, style or ExportStyle(), overwrite)


def export_all(plots: dict[str, pg.PlotItem], folder: str | Path, style: ExportStyle | None = None,
               overwrite: bool = False) -> list[Path]:
    """Every plot in each of the style's formats, as ``<folder>/<name>.<format>``."""
    style = style or ExportStyle()
    folder = Path(folder)
    written = []
    for name, item in plots.items():
        spec = figure_of(item)
        for fmt in style.formats:
            written.append(write(spec, folder / f"{name}.{fmt}", style, overwrite))
    return written
