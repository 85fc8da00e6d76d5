"""A figure as plain data: panels stacked top to bottom, each with its curves, marks and heat map."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Line:
    """A curve (``pairs``: every two points a separate segment, as contour lines are stored)."""

    x: np.ndarray
    y: np.ndarray
    color: str = "#000000"
    alpha: float = 1.0
    width: float = 1.0  # screen pixels
    dash: str = "-"  # matplotlib's line style: "-", "--", ":", "-."
    label: str = ""  # listed in the legend when not empty
    marker: str | None = None  # matplotlib's marker, e.g. "o"
    marker_size: float = 4.0  # screen pixels
    pairs: bool = False
    z: float = 2.0


@dataclass
class Rule:
    """A vertical (``vertical``) or horizontal line across the panel at ``at``."""

    at: float
    vertical: bool = True
    color: str = "#888888"
    width: float = 1.0
    dash: str = "--"


@dataclass
class Text:
    """A text at a data point; ``anchor`` as pyqtgraph's (0, 0) = the text's top left at the point."""

    x: float
    y: float
    text: str
    color: str = "#000000"
    anchor: tuple[float, float] = (0.0, 0.0)
    box: str | None = None  # a fill behind the text
    box_alpha: float = 0.0
    z: float = 6.0


@dataclass
class Marks:
    """Points drawn with a symbol each (the models on a landscape map)."""

    x: np.ndarray
    y: np.ndarray
    markers: list[str]
    size: float = 10.0  # screen pixels
    face: str = "#e53935"
    edge: str = "#ffffff"
    edge_width: float = 1.0
    z: float = 7.0


@dataclass
class Raster:
    """A heat map: ``values[row, col]``, row 0 at ``extent``'s y0, with its colour scale."""

    values: np.ndarray
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1
    colors: np.ndarray  # (n, 3) floats in 0..1, low to high
    levels: tuple[float, float]
    label: str = ""  # the colour bar's title
    horizontal_bar: bool = False  # the colour bar below the panel instead of on its right


@dataclass
class Panel:
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    xlog: bool = False
    ylog: bool = False
    y_inverted: bool = False
    equal_aspect: bool = False
    grid: bool = False
    yticks: list[tuple[float, str]] | None = None  # fixed ticks (a heat map's layer names)
    xticks: list[tuple[float, str]] | None = None
    top_names: list[tuple[float, str]] = field(default_factory=list)  # stage or model names above the panel
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    marks: list[Marks] = field(default_factory=list)
    raster: Raster | None = None
    height: float = 1.0  # relative to the other panels


@dataclass
class FigureSpec:
    panels: list[Panel]
    aspect: float = 0.62  # height / width of the whole figure, as on screen
    share_x: bool = False
    description: str = "Watermark Studio plot"
