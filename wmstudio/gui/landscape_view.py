"""Loss-landscape views: 2D map with models and trajectories, interactive 3D surface, 1D path.

Surfaces fill in while the engine computes them: each batch of finished points is written into the
arrays and the not-yet-computed points show their nearest computed neighbour, so the whole surface
is visible after the first coarse level and sharpens with every next one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wmstudio.events import Event, LandscapeFinished, LandscapePoints
from wmstudio.gui.gl import opengl_status
from wmstudio.gui.metrics_view import align_left_axes
from wmstudio.landscape.figures import LABELS, MODEL_STYLE
from wmstudio.landscape.grid import fill_nearest
from wmstudio.landscape.spec import KINDS, METRICS, LandscapeSpec
from wmstudio.landscape.store import Landscape

COLORMAPS = ("viridis", "inferno", "plasma", "magma", "cividis", "turbo")


def legend_brush() -> pg.QtGui.QBrush:
    """The legend's box: the plot background, nearly opaque, so its text reads on any colour map."""
    c = pg.mkColor(pg.getConfigOption("background"))
    c.setAlpha(225)
    return pg.mkBrush(c)


def legend_text() -> pg.QtGui.QColor:
    return pg.mkColor(pg.getConfigOption("foreground"))
VISIBLE_SPAN = 0.01  # a trajectory spanning less than this share of the map is a dot: not drawn nor listed
TRAJECTORY_COLORS = {"pretrain": "#bbbbbb", "embed": "#4fc3f7", "finetune": "#ff7043", "restore": "#66bb6a"}


@dataclass
class LandscapeMeta:
    """A landscape's axes, models and trajectories, read by the worker right after it was created."""

    landscape: Landscape


class LandscapeView(QWidget):
    compute_requested = Signal(object)  # LandscapeSpec
    stop_requested = Signal()
    landscape_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ls: Landscape | None = None
        self.dirty = False
        self.gl_view = None
        self.gl_surface = None
        outer = QVBoxLayout(self)
        # ---- compute controls
        row = QHBoxLayout()
        self.kind = QComboBox()
        self.kind.addItems(KINDS)
        self.kind.setToolTip("plane: through the watermarked, fine-tuned and restored models; random: two "
                             "filter-normalised random directions around one model; pca: principal directions "
                             "of the recorded trajectory; line: the straight path through the checkpoints")
        self.resolution = QSpinBox()
        self.resolution.setRange(3, 401)
        self.resolution.setValue(31)
        self.resolution.setToolTip("points per axis (per segment for a line)")
        self.data = QComboBox()
        self.data.addItems(["test", "owner"])
        self.data.setToolTip("the clean set evaluated at each point (the trigger set always is)")
        self.images = QSpinBox()
        self.images.setRange(0, 1_000_000)
        self.images.setValue(500)
        self.images.setToolTip("clean images evaluated per point (0 = all)")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Compute this landscape into the current run log (resumes an unfinished one)")
        self.published_button = QPushButton("Published view")
        self.published_button.setToolTip("One click: the PCA plane of the fine-tuning and restoration checkpoints, "
                                         "centred on the restored model, showing the trigger-set loss with the path")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop; the points computed so far stay in the log")
        for label, w in (("Kind", self.kind), ("Resolution", self.resolution), ("Clean data", self.data),
                         ("Images", self.images)):
            row.addWidget(QLabel(label))
            row.addWidget(w)
        row.addWidget(self.compute_button)
        row.addWidget(self.published_button)
        row.addWidget(self.stop_button)
        row.addStretch(1)
        outer.addLayout(row)
        # ---- display controls
        row2 = QHBoxLayout()
        self.stored = QComboBox()
        self.stored.setToolTip("landscapes stored in this run log")
        self.stored.setMinimumWidth(140)
        self.metric = QComboBox()
        for m in METRICS:
            self.metric.addItem(LABELS[m], m)
        self.metric.setCurrentIndex(METRICS.index("trigger_loss"))
        self.metric.setToolTip("which per-point value to draw")
        self.log_scale = QCheckBox("log scale")
        self.log_scale.setToolTip("draw log10 of the loss")
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.status = QLabel("no landscape")
        for label, w in (("Stored", self.stored), ("Show", self.metric), ("Colours", self.cmap)):
            row2.addWidget(QLabel(label))
            row2.addWidget(w)
        row2.addWidget(self.log_scale)
        row2.addWidget(self.status, 1)
        outer.addLayout(row2)
        # ---- views
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs, 1)
        self.map_widget = pg.PlotWidget(title="2D map")
        self.map = self.map_widget.getPlotItem()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.map.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False)
        self.colorbar.setImageItem(self.image, insert_in=self.map)
        self.map.addLegend(offset=(10, 10), labelTextSize="9pt", brush=legend_brush(), pen=pg.mkPen(legend_text()),
                           labelTextColor=legend_text())
        self.map.legend.setVisible(False)  # shown once there is a trajectory to list
        self.models_item = pg.ScatterPlotItem(size=14, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush("#e53935"))
        self.map.addItem(self.models_item)
        self.model_labels: list[pg.TextItem] = []
        self.trajectory_items: list[pg.PlotDataItem] = []
        self.hover = QLabel(" ")
        map_page = QWidget()
        mp = QVBoxLayout(map_page)
        mp.addWidget(self.map_widget, 1)
        mp.addWidget(self.hover)
        self.tabs.addTab(map_page, "2D map")
        self.surface_page = QWidget()
        self.surface_layout = QVBoxLayout(self.surface_page)
        self.surface_note = QLabel("")  # says why the surface is empty, when it is
        self.surface_note.setVisible(False)
        self.surface_layout.addWidget(self.surface_note)
        self.tabs.addTab(self.surface_page, "3D surface")
        ok, reason = opengl_status()
        self.gl_reason = reason
        if not ok:
            note = QLabel(f"The 3D view needs OpenGL, which is not available here: {reason}.\n"
                          "The 2D map and the 1D path views work without it.")
            note.setAlignment(Qt.AlignmentFlag.AlignCenter)
            note.setWordWrap(True)
            self.surface_layout.addWidget(note)
        self.path_widget = pg.GraphicsLayoutWidget()
        self.path_loss = self.path_widget.addPlot(row=0, col=0, title="Loss along the path")
        self.path_acc = self.path_widget.addPlot(row=1, col=0, title="Accuracy along the path")
        self.path_acc.setXLink(self.path_loss)
        align_left_axes(self.path_loss, self.path_acc)
        self.path_acc.setLabel("bottom", "distance along the path (parameter space)")
        self.path_curves = {}
        for plot, kind in ((self.path_loss, "loss"), (self.path_acc, "acc")):
            plot.addLegend(offset=(-10, 10), labelTextSize="9pt", brush=legend_brush(), pen=pg.mkPen(legend_text()),
                           labelTextColor=legend_text())
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.getAxis("bottom").enableAutoSIPrefix(False)  # both plots read the same distances
            self.path_curves[f"test_{kind}"] = plot.plot(pen=pg.mkPen("#2f7ed8", width=2), name=f"clean {kind}")
            self.path_curves[f"trigger_{kind}"] = plot.plot(pen=pg.mkPen("#e4572e", width=2), name=f"trigger {kind}")
        self.path_lines: list[pg.InfiniteLine] = []
        self.tabs.addTab(self.path_widget, "1D path")
        # ---- wiring
        self.compute_button.clicked.connect(self._request)
        self.published_button.clicked.connect(self._request_published)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        for w in (self.metric, self.cmap):
            w.currentIndexChanged.connect(self.redraw)
        self.log_scale.toggled.connect(self.redraw)
        self.stored.activated.connect(lambda _i: self.landscape_selected.emit(self.stored.currentText()))
        self.tabs.currentChanged.connect(lambda _i: self._ensure_gl() or self.redraw())
        self.hover_proxy = pg.SignalProxy(self.map.scene().sigMouseMoved, rateLimit=30, slot=self._hover)

    # ------------------------------------------------------------ requests
    def spec(self) -> LandscapeSpec:
        kind = self.kind.currentText()
        return LandscapeSpec(kind=kind, name=f"{kind}-{self.resolution.value()}", resolution=self.resolution.value(),
                             data=self.data.currentText(), images=self.images.value())

    def _request(self) -> None:
        self.compute_requested.emit(self.spec())

    def _request_published(self) -> None:
        spec = LandscapeSpec.published(self.resolution.value())
        spec.data, spec.images = self.data.currentText(), self.images.value()
        self.kind.setCurrentText(spec.kind)  # the controls say what is being computed
        self.metric.setCurrentIndex(METRICS.index("trigger_loss"))
        self.tabs.setCurrentIndex(0)
        self.compute_requested.emit(spec)

    def set_computing(self, busy: bool) -> None:
        self.compute_button.setEnabled(not busy)
        self.published_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def set_kind_reasons(self, reasons: dict[str, str]) -> None:
        """Kinds the shown log cannot have are disabled, their reason as the item's tooltip."""
        model = self.kind.model()
        for i in range(self.kind.count()):
            why = reasons.get(self.kind.itemText(i), "")
            model.item(i).setEnabled(not why)
            self.kind.setItemData(i, f"Not for this log: {why}" if why else None, Qt.ItemDataRole.ToolTipRole)
        if reasons.get(self.kind.currentText()):
            usable = [i for i in range(self.kind.count()) if not reasons.get(self.kind.itemText(i))]
            if usable:
                self.kind.setCurrentIndex(usable[0])

    def set_busy(self, job: str, can_compute: bool, why_not: str = "") -> None:
        """``job``: the app's running job ("" when idle); Compute needs an idle app and a run log."""
        self.set_computing(job == "landscape")
        ok = can_compute and not job
        for b in (self.compute_button, self.published_button):
            b.setEnabled(ok)
        self.compute_button.setToolTip("Compute this landscape into the current run log (resumes an unfinished one)"
                                       if ok else f"Cannot compute now: {why_not or 'a job is running'}")

    def clear(self) -> None:
        """Forget the shown landscape (another log was opened, or a new run started): every view empties."""
        self.ls = None
        self.dirty = False
        self.stored.clear()
        self.map.setTitle("2D map")
        self._empty_views()
        if self.gl_surface is not None:
            self.gl_models.setData(pos=np.zeros((0, 3)))
        self.status.setText("no landscape")

    def _empty_views(self) -> None:
        """Empty the map, its overlays, the 1D paths and the 3D surface (the items stay for reuse)."""
        self.image.clear()
        self._clear_overlays()
        self.models_item.setData(pos=np.zeros((0, 2)))
        for curve in self.path_curves.values():
            curve.setData([], [])
        self._clear_path_lines()
        if self.gl_surface is not None:
            self.gl_surface.setVisible(False)
        self.hover.setText(" ")
        self.surface_note.setVisible(False)

    @property
    def has_3d(self) -> bool:
        """Whether a 3D surface is drawn (and so can be exported)."""
        return self.gl_view is not None and self.gl_surface is not None and self.gl_surface.visible() \
            and self.ls is not None and self.ls.is_2d and bool(self.ls.done.any())

    def describe(self) -> str:
        """The status line for the shown landscape."""
        if self.ls is None:
            return "no landscape"
        ls = self.ls
        return f"{ls.name} ({ls.kind}): {ls.status}, {int(ls.done.sum())}/{ls.done.size} points"

    @property
    def current_name(self) -> str:
        """The name of the landscape shown ("" when none is)."""
        return self.ls.name if self.ls is not None else ""

    def export_items(self) -> dict:
        """The plots to export: the 2D map or the 1D path, once any point is computed."""
        ls = self.ls
        if ls is None or not ls.done.any():
            return {}
        return {"landscape_2d": self.map} if ls.is_2d else {"landscape_path": self.path_widget.ci}

    def set_stored(self, names: list[str], current: str = "") -> None:
        self.stored.blockSignals(True)
        self.stored.clear()
        self.stored.addItems(names)
        if current in names:
            self.stored.setCurrentText(current)
        self.stored.blockSignals(False)

    # ------------------------------------------------------------ data
    def show_landscape(self, ls: Landscape) -> None:
        self.ls = ls
        self.status.setText(self.describe())
        self.hover.setText(" ")
        self.surface_note.setText("" if ls.is_2d else f"'{ls.name}' is a 1D path: the 3D surface and the 2D map "
                                  "show 2D landscapes; see the 1D path tab.")
        self.surface_note.setVisible(not ls.is_2d)
        if not ls.is_2d:  # the 2D views hold nothing of a path
            self.image.clear()
            self._clear_overlays()
            self.models_item.setData(pos=np.zeros((0, 2)))
            self.map.setTitle(f"'{ls.name}' is a 1D path: see the 1D path tab")
            if self.gl_surface is not None:
                self.gl_surface.setVisible(False)
                self.gl_models.setData(pos=np.zeros((0, 3)))
        if self.stored.findText(ls.name) < 0:
            self.stored.addItem(ls.name)
        self.stored.setCurrentText(ls.name)
        if ls.is_2d and self.tabs.currentIndex() == 2:
            self.tabs.setCurrentIndex(0)
        elif not ls.is_2d:
            self.tabs.setCurrentIndex(2)
        self.redraw()

    def apply_events(self, events: list[Event | LandscapeMeta]) -> None:
        for e in events:
            if isinstance(e, LandscapeMeta):
                self.show_landscape(e.landscape)
            elif isinstance(e, LandscapePoints) and self.ls is not None and e.name == self.ls.name:
                done = self.ls.done.reshape(-1)
                idx = np.asarray(e.indices, dtype=np.int64)
                done[idx] = True
                for m in METRICS:
                    self.ls.metrics[m].reshape(-1)[idx] = e.values[m]
                self.status.setText(f"{self.ls.name}: level {e.level}, {e.done}/{e.total} points")
                self.dirty = True
            elif isinstance(e, LandscapeFinished) and self.ls is not None and e.name == self.ls.name:
                self.ls.status = e.status
                self.status.setText(f"{self.ls.name}: {e.status} ({int(self.ls.done.sum())}/{self.ls.done.size} "
                                    f"points, {e.seconds:.1f} s)")
                self.dirty = True
        if self.dirty:
            self.dirty = False
            self.redraw()

    def values(self) -> np.ndarray:
        """The drawn array: the metric, nearest-filled where not computed yet, log10 if asked."""
        assert self.ls is not None
        m = self.metric.currentData()
        v = fill_nearest(self.ls.metrics[m], self.ls.done)
        if self.log_scale.isChecked() and m.endswith("loss"):
            v = np.log10(np.maximum(v, 1e-8))
        return v

    # ------------------------------------------------------------ drawing
    def redraw(self, *_args: object) -> None:
        if self.ls is None:
            return
        ls = self.ls
        if not ls.done.any():  # a landscape just started: show nothing of the previous one meanwhile
            self._empty_views()
            self.map.setTitle(f"{ls.kind} '{ls.name}' (starting)")
            return
        if not ls.is_2d:
            self._draw_path(ls)
            return
        v = self.values()
        x, y = ls.axes["x"], ls.axes["y"]
        dx = (x[-1] - x[0]) / max(1, len(x) - 1)
        dy = (y[-1] - y[0]) / max(1, len(y) - 1)
        cmap = pg.colormap.get(self.cmap.currentText())
        self.colorbar.setColorMap(cmap)
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.image.setImage(v, autoLevels=False)
        self.image.setRect(QRectF(x[0] - dx / 2, y[0] - dy / 2, dx * len(x), dy * len(y)))
        self.colorbar.setLevels((lo, hi if hi > lo else lo + 1e-9))
        label = ("log10 " if self.log_scale.isChecked() and self.metric.currentData().endswith("loss") else "") + \
            LABELS[self.metric.currentData()]
        self.colorbar.axis.setLabel(label)
        self.map.setTitle(f"{label} — {ls.kind} '{ls.name}'" + ("" if ls.complete else " (filling in)"))
        self.map.setAspectLocked(ls.kind in ("plane", "pca"))
        self._draw_overlays(ls)
        if self.gl_surface is not None:
            self._draw_surface(v, cmap, lo, hi)

    def _clear_overlays(self) -> None:
        for item in self.model_labels + self.trajectory_items:
            self.map.removeItem(item)
        self.model_labels, self.trajectory_items = [], []
        if self.map.legend is not None:
            self.map.legend.clear()
            self.map.legend.setVisible(False)

    def _draw_overlays(self, ls: Landscape) -> None:
        self._clear_overlays()
        x, y = ls.axes["x"], ls.axes["y"]
        for stage, tr in ls.trajectories.items():
            xy = np.asarray(tr["xy"], dtype=np.float64).reshape(-1, 2)
            xy = xy[np.isfinite(xy).all(axis=1)]
            inside = xy[(xy[:, 0] >= x[0]) & (xy[:, 0] <= x[-1]) & (xy[:, 1] >= y[0]) & (xy[:, 1] <= y[-1])]
            span = np.ptp(inside, axis=0) if len(inside) else np.zeros(2)
            if not len(inside) or (span[0] < VISIBLE_SPAN * (x[-1] - x[0]) and span[1] < VISIBLE_SPAN * (y[-1] - y[0])):
                # off this map, or a dot at its scale (a path that runs across the plane, not in it,
                # as on random directions): neither drawn nor listed
                continue
            color = TRAJECTORY_COLORS.get(stage, "#ffffff")
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

    def _draw_path(self, ls: Landscape) -> None:
        t = ls.axes["t"]
        for name, curve in self.path_curves.items():
            v = ls.metrics[name].copy()
            curve.setData(t[np.isfinite(v)], v[np.isfinite(v)])
        self.path_loss.setLogMode(y=self.log_scale.isChecked())
        self._clear_path_lines()
        for plot in (self.path_loss, self.path_acc):
            for name, pos in zip(ls.model_names, ls.model_coords, strict=False):
                line = pg.InfiniteLine(float(pos), angle=90, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine),
                                       label=MODEL_STYLE.get(name, ("", name))[1] if plot is self.path_loss else None,
                                       labelOpts={"position": 0.9, "color": "#888888"})
                plot.addItem(line)
                self.path_lines.append(line)

    def _clear_path_lines(self) -> None:
        for line in self.path_lines:
            for plot in (self.path_loss, self.path_acc):
                if line in plot.items:
                    plot.removeItem(line)
        self.path_lines = []

    def _hover(self, evt: tuple) -> None:
        if self.ls is None or not self.ls.is_2d:
            return
        pos = self.map.vb.mapSceneToView(evt[0])
        x, y = self.ls.axes["x"], self.ls.axes["y"]
        j = int(np.argmin(np.abs(x - pos.x())))
        i = int(np.argmin(np.abs(y - pos.y())))
        inside = x[0] - (x[1] - x[0]) <= pos.x() <= x[-1] + (x[1] - x[0]) and y[0] - (y[1] - y[0]) <= pos.y() <= y[-1] + (y[1] - y[0])
        if not inside:
            self.hover.setText(" ")
            return
        parts = [f"x = {pos.x():.4g}, y = {pos.y():.4g}"]
        if self.ls.done[i, j]:
            parts += [f"{LABELS[m]} {self.ls.metrics[m][i, j]:.4g}" for m in METRICS]
        else:
            parts.append("not computed yet")
        self.hover.setText("   ".join(parts))

    # ------------------------------------------------------------ 3D
    def _ensure_gl(self) -> None:
        if self.tabs.currentIndex() != 1 or self.gl_view is not None or not opengl_status()[0]:
            return
        import pyqtgraph.opengl as gl

        self.gl_view = gl.GLViewWidget()
        self.gl_view.setCameraPosition(distance=36, elevation=30, azimuth=-55)
        dark = self.palette().window().color().lightness() < 128
        self.gl_view.setBackgroundColor((30, 30, 33) if dark else (236, 236, 238))
        grid = gl.GLGridItem(color=(150, 150, 150, 120))
        grid.setSize(20, 20)
        grid.setSpacing(2, 2)
        self.gl_view.addItem(grid)
        self.gl_surface = gl.GLSurfacePlotItem(shader=None, smooth=False, computeNormals=False)
        self.gl_view.addItem(self.gl_surface)
        self.gl_models = gl.GLScatterPlotItem(size=14, color=(0.9, 0.1, 0.1, 1), pxMode=True)
        self.gl_models.setGLOptions("translucent")
        self.gl_view.addItem(self.gl_models)
        self.surface_layout.addWidget(self.gl_view, 1)
        self.surface_layout.addWidget(QLabel("Drag to rotate, wheel to zoom; colour map and log scale as above."))

    def _draw_surface(self, v: np.ndarray, cmap: pg.ColorMap, lo: float, hi: float) -> None:
        ls = self.ls
        assert ls is not None and self.gl_surface is not None
        x, y = ls.axes["x"], ls.axes["y"]
        sx = 20.0 / max(x[-1] - x[0], 1e-12)
        sy = 20.0 / max(y[-1] - y[0], 1e-12)
        if ls.kind in ("plane", "pca"):
            sx = sy = min(sx, sy)
        xs, ys = (x - (x[0] + x[-1]) / 2) * sx, (y - (y[0] + y[-1]) / 2) * sy
        span = hi - lo if hi > lo else 1.0
        z = ((v - lo) / span * 8.0).T  # (nx, ny), 8 units tall
        colors = cmap.map(np.clip((v.T - lo) / span, 0, 1).reshape(-1), mode="float").reshape(-1, 4)
        self.gl_surface.setData(x=xs, y=ys, z=np.nan_to_num(z), colors=colors)
        self.gl_surface.setVisible(True)
        pts = []
        for mx, my in np.asarray(ls.model_coords).reshape(-1, 2):
            j, i = int(np.argmin(np.abs(x - mx))), int(np.argmin(np.abs(y - my)))
            pts.append(((mx - (x[0] + x[-1]) / 2) * sx, (my - (y[0] + y[-1]) / 2) * sy, z[j, i] + 0.3))
        self.gl_models.setData(pos=np.asarray(pts) if pts else np.zeros((0, 3)))

    def export_3d(self, path: str, size: tuple[int, int] = (1600, 1200)) -> bool:
        """Render the 3D view to a PNG of the given size; False when no 3D surface is drawn."""
        if not self.has_3d:
            return False
        arr = self.gl_view.renderToArray(size)  # (height, width, 4), BGRA
        img = pg.functions.makeQImage(arr, transpose=arr.shape[:2] != (size[1], size[0]))
        return bool(img.save(path))
