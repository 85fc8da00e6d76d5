"""The Loss landscape tab: the controls above three views of the shown landscape (2D map, 3D surface,
1D path), each a panel of its own:

- ``landscape_controls``: what to compute (a form built from ``LandscapeSpec``) and how to show it;
- ``landscape_map``: the 2D map with models, trajectories and contours;
- ``landscape_surface``: the interactive 3D surface (OpenGL; a note where there is none);
- ``landscape_path``: loss and accuracy along a path;
- ``landscape_export``: the 3D surface as a picture.

This view holds the shown landscape, applies the engine's events to it and tells the panels what to
draw. Surfaces fill in while the engine computes them: each batch of finished points is written into
the arrays and the not-yet-computed points stay missing, so the whole surface is visible after the first
coarse level and sharpens with every next one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QScrollArea, QSizePolicy, QTabWidget, QVBoxLayout, QWidget

from wmstudio.events import Event, LandscapeFinished, LandscapePoints, LandscapeStarted
from wmstudio.figures.style import ExportStyle
from wmstudio.gui.landscape_controls import COLORMAPS, LandscapeControls
from wmstudio.gui.landscape_map import CONTOUR_LEVELS, LandscapeMap
from wmstudio.gui.landscape_parts import (
    TRAJECTORY_COLORS,
    VISIBLE_SPAN,
    describe,
    legend_brush,
    legend_text,
    map_axis_labels,
    point_text,
    progress_words,
    shown_values,
    value_label,
    visible_trajectories,
)
from wmstudio.gui.landscape_path import LandscapePath
from wmstudio.gui.landscape_surface import SURFACE_HEIGHT, SURFACE_SIZE, LandscapeSurface
from wmstudio.landscape.spec import METRICS, LandscapeSpec
from wmstudio.landscape.store import Landscape
from wmstudio.status import Status

__all__ = ["COLORMAPS", "CONTOUR_LEVELS", "SURFACE_HEIGHT", "SURFACE_SIZE", "TRAJECTORY_COLORS", "VISIBLE_SPAN",
           "LandscapeView", "legend_brush", "legend_text", "map_axis_labels", "progress_words"]

MAP_TAB, SURFACE_TAB, PATH_TAB = 0, 1, 2



class _Via:
    """Attribute ``name`` of the view's panel ``panel``, read through the view (``view.kind`` is
    ``view.controls.kind``)."""

    def __init__(self, panel: str, name: str) -> None:
        self.panel, self.name = panel, name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.panel), self.name)


class ControlsArea(QScrollArea):
    """The landscape controls in a vertical scroll area as high as they are (their rows wrap with the
    width), and shrinking, with a scroll bar, only where the plots below would get less than
    ``MIN_PLOT_PX``."""

    def __init__(self, controls: QWidget) -> None:
        super().__init__()
        self.setWidget(controls)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.setMinimumHeight(60)
        controls.installEventFilter(self)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        w = self.widget()
        width = max(1, self.viewport().width())
        height = w.heightForWidth(width) if w.hasHeightForWidth() else -1
        return QSize(super().sizeHint().width(), max(height, w.sizeHint().height()) + 2 * self.frameWidth())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if obj is self.widget() and event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Resize):
            self.updateGeometry()  # the controls' height changed (a row wrapped, a kind's fields shown)
        return super().eventFilter(obj, event)


MIN_PLOT_PX = 240  # the 2D map, 3D surface and 1D path keep at least this height; the controls above them scroll

# the panels' widgets and methods that the tab offered before it was split, still read through the view
FORWARDED = {
    "controls": ("kind", "resolution", "data", "images", "precision", "compute_button", "published_button",
                 "stop_button", "stored", "metric_box", "log_scale", "contours", "cmap", "status"),
    "map_panel": ("map_widget", "map", "image", "colorbar", "models_item", "model_labels", "trajectory_items",
                  "drawn_trajectories", "contour_items", "contour_labels", "contour_levels", "hover", "empty"),
    "surface": ("gl_view", "gl_surface", "gl_vertices", "gl_paths", "gl_models", "gl_axes", "gl_texts",
                "gl_text_data", "gl_colorbar", "gl_colorbar_widget", "surface_readout", "surface_note",
                "fitted_size", "gl_reason", "fit_camera", "camera_matrix", "surface_labels"),
    "path": ("path_widget", "path_loss", "path_acc", "path_models", "path_curves", "path_lines", "straight_curves",
             "path_readout", "path_crosshair"),
}


def _forwarding(cls: type) -> type:
    for panel, names in FORWARDED.items():
        for name in names:
            setattr(cls, name, _Via(panel, name))
    return cls


@_forwarding
class LandscapeView(QWidget):
    compute_requested = Signal(object)  # LandscapeSpec
    stop_requested = Signal()
    landscape_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ls: Landscape | None = None
        self.dirty = False
        self.has_log = False  # a run log is open (Compute can write into it): the empty view says so
        self.computing = False  # the app's job computes a landscape (the shown one, while its status is running)
        self.title_text = ""  # the shown 2D landscape's title (the map's, and the 3D export's)
        self.export_label_rects: list = []  # where the last 3D export painted its title and labels (QRectF each)
        outer = QVBoxLayout(self)
        self.controls = LandscapeControls()
        self.tabs = QTabWidget()
        self.tabs.setMinimumHeight(MIN_PLOT_PX)
        # the controls take the height they need and scroll only where the window is too low for them and
        # the plots (in an 800x550 window the map had shrunk to 40 px)
        self.controls_area = ControlsArea(self.controls)
        outer.addWidget(self.controls_area)
        outer.addWidget(self.tabs, 1)
        self.map_panel = LandscapeMap()
        self.surface = LandscapeSurface()
        self.path = LandscapePath()
        self.tabs.addTab(self.map_panel, "&2D map")  # Alt+2, Alt+3, Alt+P switch between the three
        self.tabs.addTab(self.surface, "&3D surface")
        self.tabs.addTab(self.path, "1D &path")
        self.controls.compute_requested.connect(self.compute_requested)
        self.controls.published_requested.connect(self._request_published)
        self.controls.stop_requested.connect(self.stop_requested)
        self.controls.landscape_selected.connect(self.landscape_selected)
        self.controls.display_changed.connect(self.redraw)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.show_empty()

    @property
    def surface_page(self) -> LandscapeSurface:
        """The 3D surface's page (the panel itself)."""
        return self.surface

    # ------------------------------------------------------------ requests
    def spec(self) -> LandscapeSpec:
        return self.controls.spec()

    def _request_published(self, spec: LandscapeSpec) -> None:
        self.tabs.setCurrentIndex(MAP_TAB)
        self.compute_requested.emit(spec)

    def set_computing(self, busy: bool) -> None:
        self.controls.set_computing(busy)
        if busy != self.computing:
            self.computing = busy
            if self.ls is not None and self.ls.done.any() and not self.ls.complete:
                self.redraw()  # its title: filling in, or stopped with the points it holds

    def set_kind_reasons(self, reasons: dict[str, str]) -> None:
        """Kinds the shown log cannot have are disabled, their reason as the item's tooltip."""
        self.controls.set_kind_reasons(reasons)

    def set_busy(self, job: str, can_compute: bool, why_not: str = "") -> None:
        """``job``: the app's running job ("" when idle); Compute needs an idle app and a run log."""
        self.set_computing(job == "landscape")
        self.controls.set_can_compute(can_compute and not job, why_not)
        self.has_log = can_compute
        if self.ls is None and not job:
            self.show_empty()

    def clear(self) -> None:
        """Forget the shown landscape (another log was opened, or a new run started): every view empties."""
        self.ls = None
        self.dirty = False
        self.surface.forget_camera()
        self.controls.stored.clear()
        self.map_panel.blank("2D map")
        self._empty_views()
        self.controls.set_status("no landscape")
        self.show_empty()

    def show_empty(self, text: str = "") -> None:
        """Say in the view what to do to get a landscape."""
        what = ("No landscape in this run log yet: press Compute" if self.has_log else
                "No landscape shown: open a run log (File ▸ Open…), then press Compute")
        self.map_panel.show_empty(text or f"{what} (or Published view for the PCA plane of the attack and restoration).")

    def _empty_views(self) -> None:
        """Empty the map, its overlays, the 1D paths and the 3D surface (the items stay for reuse)."""
        self.map_panel.clear()
        self.path.clear()
        self.surface.hide_surface()
        self.surface.set_note("")

    @property
    def has_3d(self) -> bool:
        """Whether a 3D surface is drawn (and so can be exported): the view has its OpenGL context (made the
        first time its window is on screen) and shows a 2D landscape."""
        return self.surface.has_surface and self.ls is not None and self.ls.is_2d and bool(self.ls.done.any())

    def describe(self) -> str:
        """The status line for the shown landscape."""
        return describe(self.ls)

    @property
    def current_name(self) -> str:
        """The name of the landscape shown ("" when none is)."""
        return self.ls.name if self.ls is not None else ""

    def export_items(self) -> dict:
        """The plots to export: the 2D map or the 1D path, once any point is computed."""
        ls = self.ls
        if ls is None or not ls.done.any():
            return {}
        return {"landscape_2d": self.map_panel.map} if ls.is_2d else {"landscape_path": self.path.export_item}

    def set_stored(self, names: list[str], current: str = "") -> None:
        self.controls.set_stored(names, current)

    def point_text(self, i: int, j: int, px: float, py: float) -> str:
        """The read-out of grid point (row i, column j) of the shown landscape, at map position (px, py)."""
        assert self.ls is not None
        return point_text(self.ls, i, j, px, py)

    # ------------------------------------------------------------ data
    def show_landscape(self, ls: Landscape) -> None:
        # imported here: it loads torch, which the window's start does not wait for
        from wmstudio.landscape.precision_check import precision_lines

        self.ls = ls
        self.map_panel.hide_empty()
        reason = ls.attrs.get("eval_precision_reason")
        checked = "\n".join(precision_lines(ls.attrs)[1:])  # the bf16 check's tolerance and figures, if it ran
        self.controls.set_status(self.describe(), f"evaluated in {ls.attrs.get('eval_precision')}: {reason}"
                                 + (f"\n{checked}" if checked else "") if reason else "")
        self.map_panel.hover.setText(" ")
        self.surface.set_note("" if ls.is_2d else f"'{ls.name}' is a 1D path: the 3D surface and the 2D map "
                              "show 2D landscapes; see the 1D path tab.")
        if not ls.is_2d:  # the 2D views hold nothing of a path
            self.map_panel.clear()
            self.map_panel.blank(f"'{ls.name}' is a 1D path: see the 1D path tab")
            self.surface.hide_surface()
        self.controls.select_stored(ls.name)
        if ls.is_2d and self.tabs.currentIndex() == PATH_TAB:
            self.tabs.setCurrentIndex(MAP_TAB)
        elif not ls.is_2d:
            self.tabs.setCurrentIndex(PATH_TAB)
        self.redraw()

    def apply_events(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, LandscapeStarted) and e.landscape is not None:
                self.show_landscape(e.landscape)
            elif isinstance(e, LandscapePoints) and self.ls is not None and e.name == self.ls.name:
                done = self.ls.done.reshape(-1)
                idx = np.asarray(e.indices, dtype=np.int64)
                done[idx] = True
                for m in METRICS:
                    self.ls.metrics[m].reshape(-1)[idx] = e.values[m]
                    if self.ls.line_metrics and f"line_{m}" in e.values:  # a curve's straight segment
                        self.ls.line_metrics[m].reshape(-1)[idx] = e.values[f"line_{m}"]
                self.controls.set_status(f"{self.ls.name}: level {e.level}, {e.done}/{e.total} points")
                self.dirty = True
            elif isinstance(e, LandscapeFinished) and self.ls is not None and e.name == self.ls.name:
                self.ls.status = e.status
                self.controls.set_status(f"{self.ls.name}: {e.status} ({int(self.ls.done.sum())}/{self.ls.done.size} "
                                         f"points, {e.seconds:.1f} s)")
                self.dirty = True
        if self.dirty:
            self.dirty = False
            self.redraw()

    def values(self) -> np.ndarray:
        """The drawn array: the metric, NaN (drawn as missing: transparent) where not computed yet, log10 if asked."""
        assert self.ls is not None
        return shown_values(self.ls, self.controls.metric, self.controls.log_scale_on)

    # ------------------------------------------------------------ drawing
    def _tab_changed(self, index: int) -> None:
        if index == SURFACE_TAB:
            self.surface.ensure_gl()  # the OpenGL view is made the first time its page is shown
        self.redraw()

    def redraw(self, *_args: object) -> None:
        if self.ls is None:
            return
        ls = self.ls
        if not ls.done.any():  # a landscape just started: show nothing of the previous one meanwhile
            self._empty_views()
            starting = self.computing and ls.status == Status.RUNNING
            self.map_panel.blank(f"{ls.kind} '{ls.name}'" + (" (starting)" if starting else progress_words(ls, False)))
            return
        if not ls.is_2d:
            self.path.draw(ls, self.controls.log_scale_on)
            return
        c = self.controls
        v = self.values()
        cmap = pg.colormap.get(c.colormap)
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        label = value_label(c.metric, c.log_scale_on)
        self.title_text = f"{label} — {ls.kind} '{ls.name}'" + progress_words(ls, self.computing)
        trajectories = visible_trajectories(ls)
        self.map_panel.draw(ls, v, cmap, lo, hi, label, self.title_text, trajectories, c.contours_on,
                            (c.metric, c.log_scale_on))
        self.surface.draw(ls, v, cmap, lo, hi, label, trajectories)

    def export_3d(self, path: str, size: tuple[int, int] = (1600, 1200), labels: bool = True,
                  overwrite: bool = False, style: ExportStyle | None = None) -> bool:
        """Render the 3D view to a PNG of the given size in the export style (``landscape_export.export_surface``:
        the title, labels and colour bar painted on); False when no 3D surface is drawn.

        A size outside ``label_layout.check_export_size``'s bounds is a ConfigError; an existing file is
        replaced only with ``overwrite``. ``export_label_rects`` then says where the title (first) and the
        labels were painted."""
        from wmstudio.gui.label_layout import check_export_size
        from wmstudio.gui.landscape_export import export_surface

        w, h = check_export_size(int(size[0]), int(size[1]))
        if not self.has_3d:
            return False
        self.export_label_rects = export_surface(self.surface, path, (w, h), self.title_text, labels, overwrite, style)
        return True
