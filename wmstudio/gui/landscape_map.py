"""The landscape tab's 2D map: a colour image of one metric over the grid, its colour bar, the models
and the recorded trajectories on it, contour lines with their values, and a hover read-out.

The panel draws what it is given (``draw``); the view decides what (the landscape, the metric, the scale).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from wmstudio.gui.contours import contour_segments, label_spots, nice_levels
from wmstudio.gui.landscape_parts import (
    TRAJECTORY_COLORS,
    legend_brush,
    legend_text,
    map_axis_labels,
    point_text,
)
from wmstudio.gui.plot_parts import set_title, title_legend
from wmstudio.landscape.figures import MODEL_STYLE
from wmstudio.landscape.kinds.base import stored_kind
from wmstudio.landscape.store import Landscape

CONTOUR_LEVELS = 8  # about this many contour lines on the map


class LandscapeMap(QWidget):
    """The 2D map's page: a note while there is nothing to show, the plot, and the hover read-out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ls: Landscape | None = None  # the landscape drawn (the hover reads it)
        self.empty = QLabel("")  # on the map's page, so the tabs keep their place
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #888888; font-size: 11pt; padding: 4px;")
        self.map_widget = pg.PlotWidget()
        self.map = self.map_widget.getPlotItem()
        title_legend(self.map, "2D map", size="9pt", brush=legend_brush(), pen=pg.mkPen(legend_text()),
                     labelTextColor=legend_text())
        self.map.setLabel("bottom", "distance along direction 1")
        self.map.setLabel("left", "distance along direction 2")
        for side in ("bottom", "left"):
            self.map.getAxis(side).enableAutoSIPrefix(False)  # ticks read the distances themselves, not x0.001
        self.image = pg.ImageItem(axisOrder="row-major")
        self.map.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False)
        self.colorbar.setImageItem(self.image, insert_in=self.map)
        self.map.legend.setVisible(False)  # shown once there is a trajectory to list
        self.models_item = pg.ScatterPlotItem(size=14, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush("#e53935"))
        self.map.addItem(self.models_item)
        self.model_labels: list[pg.TextItem] = []
        self.trajectory_items: list[pg.PlotDataItem] = []
        self.drawn_trajectories: dict[str, np.ndarray] = {}  # stage -> its points on the map
        self.contour_items: list[pg.PlotCurveItem] = []
        self.contour_labels: list[pg.TextItem] = []
        self.contour_levels = np.zeros(0)
        self._contour_key: tuple | None = None  # what the drawn contours were computed from
        self.hover = QLabel(" ")
        self.hover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the map
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.map_widget, 1)
        layout.addWidget(self.hover)
        self.hover_proxy = pg.SignalProxy(self.map.scene().sigMouseMoved, rateLimit=30, slot=self.hover_at)

    # ------------------------------------------------------------ states
    def show_empty(self, text: str) -> None:
        """Say ``text`` above the map (what to do to get a landscape)."""
        self.empty.setText(text)
        self.empty.setVisible(True)

    def hide_empty(self) -> None:
        self.empty.setVisible(False)

    def blank(self, title: str) -> None:
        """The map with nothing of an earlier landscape: no axis titles, no colour bar, only ``title``."""
        set_title(self.map, title)
        for side in ("bottom", "left"):
            self.map.setLabel(side, "")
            self.map.showLabel(side, False)
        self.colorbar.setVisible(False)
        self.map.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)

    def clear(self) -> None:
        """Empty the map and its overlays (the items stay for reuse)."""
        self.ls = None
        self.image.clear()
        self.clear_overlays()
        self.clear_contours()
        self.models_item.setData(pos=np.zeros((0, 2)))
        self.hover.setText(" ")

    # ------------------------------------------------------------ drawing
    def draw(self, ls: Landscape, v: np.ndarray, cmap: pg.ColorMap, lo: float, hi: float, label: str,
             title: str, trajectories: dict[str, np.ndarray], contours: bool, contour_key: tuple) -> None:
        """Draw ``v`` (``ls``' grid of the metric named ``label``) on ``cmap`` between ``lo`` and ``hi``, under
        ``title``, with the models and ``trajectories`` (stage -> points); contour lines when ``contours``
        and the landscape is complete, computed again only when ``contour_key`` changes."""
        self.ls = ls
        x, y = ls.axes["x"], ls.axes["y"]
        dx = (x[-1] - x[0]) / max(1, len(x) - 1)
        dy = (y[-1] - y[0]) / max(1, len(y) - 1)
        self.colorbar.setColorMap(cmap)
        self.image.setImage(v, autoLevels=False)
        self.image.setRect(QRectF(x[0] - dx / 2, y[0] - dy / 2, dx * len(x), dy * len(y)))
        self.colorbar.setLevels((lo, hi if hi > lo else lo + 1e-9))
        self.colorbar.axis.setLabel(label)
        self.colorbar.setVisible(True)
        set_title(self.map, title)
        self.map.setAspectLocked(stored_kind(ls.kind).equal_aspect)
        xlabel, ylabel = map_axis_labels(ls)
        self.map.setLabel("bottom", xlabel)
        self.map.setLabel("left", ylabel)
        self._draw_overlays(ls, trajectories)
        self._draw_contours(ls, v, lo, hi, (id(ls), ls.name, *contour_key, lo, hi)
                            if contours and ls.complete else None)

    def clear_contours(self) -> None:
        for item in self.contour_items + self.contour_labels:
            self.map.removeItem(item)
        self.contour_items, self.contour_labels, self.contour_levels = [], [], np.zeros(0)
        self._contour_key = None

    def _draw_contours(self, ls: Landscape, v: np.ndarray, lo: float, hi: float, key: tuple | None) -> None:
        """Contour lines with their values, computed once per ``key`` (landscape, metric, scale, range).

        Only a complete landscape gets them (a filling one changes with every batch, and its
        nearest-filled gaps would draw false lines); the live redraw then costs nothing more.
        """
        if key == self._contour_key:
            return
        self.clear_contours()
        self._contour_key = key
        if key is None:
            return
        x, y = ls.axes["x"], ls.axes["y"]
        levels = nice_levels(lo, hi, CONTOUR_LEVELS)
        segments = [contour_segments(x, y, v, level) for level in levels]
        pen = pg.mkPen(255, 255, 255, 150, width=1)
        for level, segs, spot in zip(levels, segments, label_spots(segments, (x[0], x[-1], y[0], y[-1])), strict=True):
            if spot is None:
                continue
            pts = segs.reshape(-1, 2)
            item = pg.PlotCurveItem(pts[:, 0], pts[:, 1], connect="pairs", pen=pen)
            item.setZValue(5)
            self.map.addItem(item, ignoreBounds=True)
            self.contour_items.append(item)
            label = pg.TextItem(f"{level:.3g}", color="w", anchor=(0.5, 0.5), fill=pg.mkBrush(0, 0, 0, 110))
            label.setPos(*spot)
            label.setZValue(6)
            self.map.addItem(label, ignoreBounds=True)
            self.contour_labels.append(label)
        self.contour_levels = np.asarray([lv for lv, segs in zip(levels, segments, strict=True) if len(segs)])

    def clear_overlays(self) -> None:
        for item in self.model_labels + self.trajectory_items:
            self.map.removeItem(item)
        self.model_labels, self.trajectory_items = [], []
        self.drawn_trajectories = {}
        if self.map.legend is not None:
            self.map.legend.clear()
            self.map.legend.setVisible(False)

    def _draw_overlays(self, ls: Landscape, trajectories: dict[str, np.ndarray]) -> None:
        self.clear_overlays()
        x, y = ls.axes["x"], ls.axes["y"]
        for stage, xy in trajectories.items():
            color = TRAJECTORY_COLORS.get(stage, "#ffffff")
            self.drawn_trajectories[stage] = xy
            item = self.map.plot(xy[:, 0], xy[:, 1], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=4,
                                 symbolPen=pg.mkPen(color), symbolBrush=pg.mkBrush(color), name=f"{stage} trajectory")
            self.trajectory_items.append(item)
        coords = np.asarray(ls.model_coords, dtype=np.float64).reshape(-1, 2)
        self.models_item.setData(pos=coords, symbol=[MODEL_STYLE.get(n, ("d", n))[0].replace("*", "star").replace("X", "x")
                                                     for n in ls.model_names])
        for name, (mx, my) in zip(ls.model_names, coords, strict=False):
            t = pg.TextItem(MODEL_STYLE.get(name, ("", name))[1], color="w", anchor=(-0.1, 1.1))
            t.setPos(float(mx), float(my))
            self.map.addItem(t)
            self.model_labels.append(t)
        if self.map.legend is not None:
            self.map.legend.setVisible(bool(self.trajectory_items))  # no empty box
        self.map.setRange(xRange=(x[0], x[-1]), yRange=(y[0], y[-1]), padding=0.02)

    # ------------------------------------------------------------ hover
    def hover_at(self, evt: tuple) -> None:
        """The read-out of the grid point nearest the mouse (``evt``: the scene position, as SignalProxy
        hands it), with its coordinates and values as the 3D read-out gives them."""
        ls = self.ls
        if ls is None or not ls.is_2d:
            return
        pos = self.map.vb.mapSceneToView(evt[0])
        x, y = ls.axes["x"], ls.axes["y"]
        j = int(np.argmin(np.abs(x - pos.x())))
        i = int(np.argmin(np.abs(y - pos.y())))
        inside = x[0] - (x[1] - x[0]) <= pos.x() <= x[-1] + (x[1] - x[0]) and y[0] - (y[1] - y[0]) <= pos.y() <= y[-1] + (y[1] - y[0])
        self.hover.setText(point_text(ls, i, j, float(x[j]), float(y[i])) if inside else " ")
