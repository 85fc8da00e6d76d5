"""Loss-landscape views: 2D map with models and trajectories, interactive 3D surface, 1D path.

Surfaces fill in while the engine computes them: each batch of finished points is written into the
arrays and the not-yet-computed points show their nearest computed neighbour, so the whole surface
is visible after the first coarse level and sharpens with every next one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QMatrix4x4,
    QPainter,
    QPainterPath,
    QPen,
    QVector3D,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wmstudio.events import Event, LandscapeFinished, LandscapePoints
from wmstudio.figures.style import ExportStyle
from wmstudio.gui.contours import contour_segments, label_spots, nice_levels
from wmstudio.gui.flow_layout import FlowLayout
from wmstudio.gui.gl import gl_view_window, opengl_status
from wmstudio.gui.plot_parts import Crosshair, StageAxis, align_left_axes, nearest, title_legend
from wmstudio.gui.surface_pick import pick, project
from wmstudio.landscape.figures import LABELS, MODEL_STYLE, axis_names
from wmstudio.landscape.spec import KINDS, METRICS, PRECISIONS, LandscapeSpec
from wmstudio.landscape.store import Landscape

COLORMAPS = ("viridis", "inferno", "plasma", "magma", "cividis", "turbo")


def legend_brush() -> pg.QtGui.QBrush:
    """The legend's box: the plot background, nearly opaque, so its text reads on any colour map."""
    c = pg.mkColor(pg.getConfigOption("background"))
    c.setAlpha(225)
    return pg.mkBrush(c)


def legend_text() -> pg.QtGui.QColor:
    return pg.mkColor(pg.getConfigOption("foreground"))


MODEL_INK = (255, 255, 255)  # model names on the surface (the models sit in its dark, low-loss parts)
CONTOUR_LEVELS = 8  # about this many contour lines on the map
SURFACE_SIZE, SURFACE_HEIGHT = 20.0, 8.0  # the 3D surface's footprint (longer side) and height, in GL units
VISIBLE_SPAN = 0.01  # a trajectory spanning less than this share of the map is a dot: not drawn nor listed
TRAJECTORY_COLORS = {"pretrain": "#bbbbbb", "embed": "#4fc3f7", "finetune": "#ff7043", "restore": "#66bb6a"}


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
    if computing and ls.status == "running":
        return " (filling in)"
    why = {"cancelled": "stopped", "running": "partial"}.get(ls.status, ls.status or "partial")
    return f" ({why}: {int(ls.done.sum())}/{ls.done.size} points)"


MISSING_RGBA = (0.55, 0.55, 0.55, 0.35)  # a 3D grid point not computed yet
MIN_EXPORT_PX = 11  # the smallest label of a 3D export, in pixels
GL_DISTANCE = 37.0  # the 3D camera's first distance, before fit_camera
FIT_EXTENT = 0.92  # fit_camera: the scene fills at most this share of the view (in normalised coordinates)


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
        self.gl_vertices = np.zeros((0, 3))  # the surface's grid points in the 3D scene
        self.has_log = False  # a run log is open (Compute can write into it): the empty view says so
        self.computing = False  # the app's job computes a landscape (the shown one, while its status is running)
        self.title_text = ""  # the shown 2D landscape's title (the map's, and the 3D export's)
        self.export_label_rects: list = []  # where the last 3D export painted its labels (QRectF each)
        self._fitted_for: tuple[str, str] | None = None  # the landscape the 3D camera was last fitted to
        self.fitted_size = (0, 0)  # the 3D view's size when its camera was last fitted
        outer = QVBoxLayout(self)
        # ---- compute controls
        row = FlowLayout()  # wraps in a narrow window
        self.kind = QComboBox()
        self.kind.addItems(KINDS)
        self.kind.setToolTip("plane: through the watermarked, fine-tuned and restored models; random: two "
                             "filter-normalised random directions around one model; pca: principal directions "
                             "of the recorded trajectory; line: the straight path through the checkpoints; "
                             "hessian: the top two eigenvectors of the clean loss's Hessian at the last model "
                             "(hessian_line: the top one); displacement: the attack (fine-tuned - watermarked) and "
                             "restoration (restored - fine-tuned) displacements, centred on the fine-tuned model; curve: a "
                             "connecting curve with one trained bend between the watermarked and fine-tuned models, "
                             "drawn with the straight segment in the 1D path tab")
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
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.precision.setToolTip("arithmetic of the clean images' forward pass: auto takes bf16 where the processor "
                                  "has it and the centre and 3 grid points agree with fp32 (loss within 0.5%, "
                                  "accuracy within 0.002), else fp32; trigger metrics are always fp32")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Compute this landscape into the current run log (resumes an unfinished one)")
        self.published_button = QPushButton("Published view")
        self.published_button.setToolTip("One click: the PCA plane of the fine-tuning and restoration checkpoints, "
                                         "centred on the restored model, showing the trigger-set loss with the path")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop; the points computed so far stay in the log")
        for label, w in (("Kind", self.kind), ("Resolution", self.resolution), ("Clean data", self.data),
                         ("Images", self.images), ("Precision", self.precision)):
            row.addWidget(QLabel(label))
            row.addWidget(w)
        row.addWidget(self.compute_button)
        row.addWidget(self.published_button)
        row.addWidget(self.stop_button)
        row.addStretch(1)
        outer.addLayout(row)
        # ---- display controls
        row2 = FlowLayout()
        self.stored = QComboBox()
        self.stored.setToolTip("landscapes stored in this run log")
        self.stored.setMinimumWidth(140)
        self.metric_box = QComboBox()
        for m in METRICS:
            self.metric_box.addItem(LABELS[m], m)
        self.metric_box.setCurrentIndex(METRICS.index("trigger_loss"))
        self.metric_box.setToolTip("which per-point value to draw")
        self.log_scale = QCheckBox("log scale")
        self.log_scale.setToolTip("draw log10 of the loss")
        self.contours = QCheckBox("contours")
        self.contours.setChecked(True)
        self.contours.setToolTip("contour lines with their values on the 2D map (drawn once the landscape is complete)")
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.status = QLabel("no landscape")
        for label, w in (("Stored", self.stored), ("Show", self.metric_box), ("Colours", self.cmap)):
            row2.addWidget(QLabel(label))
            row2.addWidget(w)
        row2.addWidget(self.log_scale)
        row2.addWidget(self.contours)
        row2.addWidget(self.status, 1)
        outer.addLayout(row2)
        self.empty = QLabel("")  # on the 2D map's page, so the tabs keep their place
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #888888; font-size: 11pt; padding: 4px;")
        # ---- views
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs, 1)
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
        map_page = QWidget()
        mp = QVBoxLayout(map_page)
        mp.addWidget(self.empty)
        mp.addWidget(self.map_widget, 1)
        mp.addWidget(self.hover)
        self.tabs.addTab(map_page, "&2D map")  # Alt+2, Alt+3, Alt+P switch between the three
        self.surface_page = QWidget()
        self.surface_layout = QVBoxLayout(self.surface_page)
        self.surface_note = QLabel("")  # says why the surface is empty, when it is
        self.surface_note.setVisible(False)
        self.surface_layout.addWidget(self.surface_note)
        self.tabs.addTab(self.surface_page, "&3D surface")
        ok, reason = opengl_status()
        self.gl_reason = reason
        if not ok:
            note = QLabel(f"The 3D view needs OpenGL, which is not available here: {reason}.\n"
                          "The 2D map and the 1D path views work without it.")
            note.setAlignment(Qt.AlignmentFlag.AlignCenter)
            note.setWordWrap(True)
            self.surface_layout.addWidget(note)
        self.path_widget = pg.GraphicsLayoutWidget()
        self.path_models = StageAxis()  # the models' names above the plots, off the curves
        self.path_loss = self.path_widget.addPlot(row=0, col=0, axisItems={"top": self.path_models})
        self.path_loss.showAxis("top")
        self.path_acc = self.path_widget.addPlot(row=1, col=0)
        self.path_acc.setXLink(self.path_loss)
        align_left_axes(self.path_loss, self.path_acc)
        self.path_acc.setLabel("bottom", "distance along the path (parameter space)")
        self.path_curves = {}
        for plot, kind in ((self.path_loss, "loss"), (self.path_acc, "acc")):
            title_legend(plot, "Loss along the path" if kind == "loss" else "Accuracy along the path", size="9pt",
                         brush=legend_brush(), pen=pg.mkPen(legend_text()), labelTextColor=legend_text())
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.getAxis("bottom").enableAutoSIPrefix(False)  # both plots read the same distances
            self.path_curves[f"test_{kind}"] = plot.plot(pen=pg.mkPen("#2f7ed8", width=2), name=f"clean {kind}")
            self.path_curves[f"trigger_{kind}"] = plot.plot(pen=pg.mkPen("#e4572e", width=2), name=f"trigger {kind}")
        self.path_lines: list[pg.InfiniteLine] = []
        self.straight_curves: dict[str, pg.PlotDataItem] = {}  # a curve landscape's straight segment (dashed)
        self.path_readout = QLabel(" ")
        self.path_readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long read-out never widens the plots
        path_page = QWidget()
        pp = QVBoxLayout(path_page)
        pp.setContentsMargins(0, 0, 0, 0)
        pp.addWidget(self.path_widget, 1)
        pp.addWidget(self.path_readout)
        self.tabs.addTab(path_page, "1D &path")
        self.path_crosshair = Crosshair(self.path_widget, [self.path_loss, self.path_acc], self.path_readout,
                                        self._describe_path)
        # ---- wiring
        self.compute_button.clicked.connect(self._request)
        self.published_button.clicked.connect(self._request_published)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        for w in (self.metric_box, self.cmap):
            w.currentIndexChanged.connect(self.redraw)
        self.log_scale.toggled.connect(self.redraw)
        self.contours.toggled.connect(self.redraw)
        self.stored.activated.connect(lambda _i: self.landscape_selected.emit(self.stored.currentText()))
        self.tabs.currentChanged.connect(lambda _i: self._ensure_gl() or self.redraw())
        self.hover_proxy = pg.SignalProxy(self.map.scene().sigMouseMoved, rateLimit=30, slot=self._hover)
        self.show_empty()

    # ------------------------------------------------------------ requests
    def spec(self) -> LandscapeSpec:
        kind = self.kind.currentText()
        return LandscapeSpec(kind=kind, name=f"{kind}-{self.resolution.value()}", resolution=self.resolution.value(),
                             data=self.data.currentText(), images=self.images.value(),
                             precision=self.precision.currentText())

    def _request(self) -> None:
        self.compute_requested.emit(self.spec())

    def _request_published(self) -> None:
        spec = LandscapeSpec.published(self.resolution.value())
        spec.data, spec.images, spec.precision = self.data.currentText(), self.images.value(), self.precision.currentText()
        self.kind.setCurrentText(spec.kind)  # the controls say what is being computed
        self.metric_box.setCurrentIndex(METRICS.index("trigger_loss"))
        self.tabs.setCurrentIndex(0)
        self.compute_requested.emit(spec)

    def set_computing(self, busy: bool) -> None:
        self.compute_button.setEnabled(not busy)
        self.published_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        if busy != self.computing:
            self.computing = busy
            if self.ls is not None and self.ls.done.any() and not self.ls.complete:
                self.redraw()  # its title: filling in, or stopped with the points it holds

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
        self.has_log = can_compute
        if self.ls is None and not job:
            self.show_empty()

    def clear(self) -> None:
        """Forget the shown landscape (another log was opened, or a new run started): every view empties."""
        self.ls = None
        self.dirty = False
        self._fitted_for = None
        self.stored.clear()
        self._blank_map("2D map")
        self._empty_views()
        self.status.setText("no landscape")
        self.show_empty()

    def show_empty(self, text: str = "") -> None:
        """Say in the view what to do to get a landscape."""
        what = ("No landscape in this run log yet: press Compute" if self.has_log else
                "No landscape shown: open a run log (File ▸ Open…), then press Compute")
        self.empty.setText(text or f"{what} (or Published view for the PCA plane of the attack and restoration).")
        self.empty.setVisible(True)

    def _blank_map(self, title: str) -> None:
        """The 2D map with nothing of an earlier landscape: no axis titles, no colour bar, only ``title``."""
        self.map.setTitle(title)
        for side in ("bottom", "left"):
            self.map.setLabel(side, "")
            self.map.showLabel(side, False)
        self.colorbar.setVisible(False)
        self.map.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)

    def _empty_views(self) -> None:
        """Empty the map, its overlays, the 1D paths and the 3D surface (the items stay for reuse)."""
        self.image.clear()
        self._clear_overlays()
        self._clear_contours()
        self.models_item.setData(pos=np.zeros((0, 2)))
        for curve in self.path_curves.values():
            curve.setData([], [])
        self._clear_path_lines()
        self.path_models.set_stages([])
        self._hide_3d()
        self.hover.setText(" ")
        self.surface_note.setVisible(False)

    @property
    def has_3d(self) -> bool:
        """Whether a 3D surface is drawn (and so can be exported): the view has its OpenGL context (made the
        first time its window is on screen) and shows a 2D landscape."""
        return self.gl_view is not None and self.gl_view.isValid() and self.gl_surface is not None \
            and self.gl_surface.visible() and self.ls is not None and self.ls.is_2d and bool(self.ls.done.any())

    def describe(self) -> str:
        """The status line for the shown landscape."""
        if self.ls is None:
            return "no landscape"
        ls = self.ls
        precision = f", {ls.attrs['eval_precision']}" if ls.attrs.get("eval_precision") else ""
        return f"{ls.name} ({ls.kind}): {ls.status}, {int(ls.done.sum())}/{ls.done.size} points{precision}"

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
        self.empty.setVisible(False)
        self.status.setText(self.describe())
        reason = ls.attrs.get("eval_precision_reason")
        self.status.setToolTip(f"evaluated in {ls.attrs.get('eval_precision')}: {reason}" if reason else "")
        self.hover.setText(" ")
        self.surface_note.setText("" if ls.is_2d else f"'{ls.name}' is a 1D path: the 3D surface and the 2D map "
                                  "show 2D landscapes; see the 1D path tab.")
        self.surface_note.setVisible(not ls.is_2d)
        if not ls.is_2d:  # the 2D views hold nothing of a path
            self.image.clear()
            self._clear_overlays()
            self._clear_contours()
            self.models_item.setData(pos=np.zeros((0, 2)))
            self._blank_map(f"'{ls.name}' is a 1D path: see the 1D path tab")
            self._hide_3d()
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
                    if self.ls.line_metrics and f"line_{m}" in e.values:  # a curve's straight segment
                        self.ls.line_metrics[m].reshape(-1)[idx] = e.values[f"line_{m}"]
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
        """The drawn array: the metric, NaN (drawn as missing: transparent) where not computed yet, log10 if asked."""
        assert self.ls is not None
        m = self.metric_box.currentData()
        v = np.where(self.ls.done, self.ls.metrics[m], np.nan)
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
            starting = self.computing and ls.status == "running"
            self._blank_map(f"{ls.kind} '{ls.name}'" + (" (starting)" if starting else progress_words(ls, False)))
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
        label = ("log10 " if self.log_scale.isChecked() and self.metric_box.currentData().endswith("loss") else "") + \
            LABELS[self.metric_box.currentData()]
        self.colorbar.axis.setLabel(label)
        self.colorbar.setVisible(True)
        self.title_text = f"{label} — {ls.kind} '{ls.name}'" + progress_words(ls, self.computing)
        self.map.setTitle(self.title_text)
        self.map.setAspectLocked(ls.kind in ("plane", "pca"))
        xlabel, ylabel = map_axis_labels(ls)
        self.map.setLabel("bottom", xlabel)
        self.map.setLabel("left", ylabel)
        self._draw_overlays(ls)
        self._draw_contours(ls, v, lo, hi)
        if self.gl_surface is not None:
            self._draw_surface(v, cmap, lo, hi, label)
            if self._fitted_for != (ls.name, ls.kind):  # a new landscape: framed once (a user's zoom then stays)
                self._fitted_for = (ls.name, ls.kind)
                self.fit_camera()

    def _clear_contours(self) -> None:
        for item in self.contour_items + self.contour_labels:
            self.map.removeItem(item)
        self.contour_items, self.contour_labels, self.contour_levels = [], [], np.zeros(0)
        self._contour_key = None

    def _draw_contours(self, ls: Landscape, v: np.ndarray, lo: float, hi: float) -> None:
        """Contour lines with their values, computed once per landscape, metric and scale.

        Only a complete landscape gets them (a filling one changes with every batch, and its
        nearest-filled gaps would draw false lines); the live redraw then costs nothing more.
        """
        want = self.contours.isChecked() and ls.complete
        key = (id(ls), ls.name, self.metric_box.currentData(), self.log_scale.isChecked(), lo, hi) if want else None
        if key == self._contour_key:
            return
        self._clear_contours()
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

    def _clear_overlays(self) -> None:
        for item in self.model_labels + self.trajectory_items:
            self.map.removeItem(item)
        self.model_labels, self.trajectory_items = [], []
        self.drawn_trajectories = {}
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

    def _draw_straight(self, ls: Landscape) -> None:
        """A curve landscape's straight segment, dashed, beside the curve (removed for other paths); the
        solid lines' legend says "curve" while a curve is shown."""
        for plot in (self.path_loss, self.path_acc):
            for sample, label in plot.legend.items if plot.legend is not None else []:
                name = next((n for n, item in self.path_curves.items() if item is sample.item), "")
                if name:
                    words = f"{'clean' if name.startswith('test') else 'trigger'} {name.split('_')[1]}"
                    label.setText(f"{words}, curve" if ls.line_metrics else words)
        if not ls.line_metrics:
            for name, item in self.straight_curves.items():
                (self.path_loss if name.endswith("loss") else self.path_acc).removeItem(item)
            self.straight_curves = {}
            return
        for name in self.path_curves:
            if name not in self.straight_curves:
                plot = self.path_loss if name.endswith("loss") else self.path_acc
                colour = "#2f7ed8" if name.startswith("test") else "#e4572e"
                label = f"{'clean' if name.startswith('test') else 'trigger'} {name.split('_')[1]}, straight line"
                self.straight_curves[name] = plot.plot(pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine),
                                                       name=label)
            v = ls.line_metrics[name]
            ok = np.isfinite(v) & ls.done
            self.straight_curves[name].setData(ls.axes["t"][ok], v[ok])

    def _draw_path(self, ls: Landscape) -> None:
        t = ls.axes["t"]
        for name, curve in self.path_curves.items():
            v = ls.metrics[name].copy()
            curve.setData(t[np.isfinite(v)], v[np.isfinite(v)])
        self._draw_straight(ls)
        self.path_acc.setLabel("bottom", ls.attrs.get("axis_units", "") if ls.kind == "curve" else
                               "distance along the path (parameter space)")
        self.path_loss.setLogMode(y=self.log_scale.isChecked())
        self._clear_path_lines()
        models = sorted((float(pos), MODEL_STYLE.get(name, ("", name))[1])
                        for name, pos in zip(ls.model_names, ls.model_coords, strict=False))
        self.path_models.set_stages(models)
        for plot in (self.path_loss, self.path_acc):
            for pos, _ in models:
                line = pg.InfiniteLine(pos, angle=90, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine))
                plot.addItem(line)
                self.path_lines.append(line)

    def _describe_path(self, plot: pg.PlotItem, x: float, _y: float) -> tuple[float, str]:
        """The 1D path's read-out: the distance along the path nearest ``x`` and the plot's values there."""
        if self.ls is None or self.ls.is_2d or not self.ls.done.any():
            return x, ""
        t = self.ls.axes["t"]
        i = nearest(t, x)
        kind = "loss" if plot is self.path_loss else "acc"
        parts = [f"{'t' if self.ls.kind == 'curve' else 'distance'} {t[i]:.4g}"]
        models = [MODEL_STYLE.get(n, ("", n))[1] for n, pos in zip(self.ls.model_names, self.ls.model_coords,
                                                                    strict=False) if abs(float(pos) - t[i]) < 1e-9]
        parts += models
        for m in (f"test_{kind}", f"trigger_{kind}"):
            v = float(self.ls.metrics[m][i])
            parts.append(f"{LABELS[m]} {v:.4g}" if np.isfinite(v) else f"{LABELS[m]} not computed yet")
            if self.ls.line_metrics and np.isfinite(self.ls.line_metrics[m][i]):
                parts.append(f"(straight line {float(self.ls.line_metrics[m][i]):.4g})")
        return float(t[i]), "   ".join(parts)

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
        # the grid point nearest the cursor, its coordinates with its values (as the 3D read-out gives them)
        self.hover.setText(self.point_text(i, j, float(x[j]), float(y[i])) if inside else " ")

    def point_text(self, i: int, j: int, px: float, py: float) -> str:
        """The read-out of grid point (row i, column j) of the shown landscape, at map position (px, py)."""
        assert self.ls is not None
        names = [name.split(" (")[0] for name in axis_names(self.ls)]
        parts = [f"{names[0]} {px:.4g}, {names[1]} {py:.4g}"]
        if self.ls.done[i, j]:
            parts += [f"{LABELS[m]} {self.ls.metrics[m][i, j]:.4g}" for m in METRICS]
        else:
            parts.append("not computed yet")
        return "   ".join(parts)

    def _hover_3d(self, x: float, y: float) -> None:
        """The read-out of the surface's grid point under the mouse at widget position (x, y)."""
        if self.ls is None or self.gl_view is None or not len(self.gl_vertices) or not self.gl_surface.visible():
            self.surface_readout.setText(" ")
            return
        view = self.gl_view
        k = pick(self.gl_vertices, self.camera_matrix(), view.width(), view.height(), (x, y))
        if k < 0:
            self.surface_readout.setText(" ")
            return
        ax, ay = self.ls.axes["x"], self.ls.axes["y"]
        j, i = divmod(k, len(ay))  # vertices run over y within x, as the surface's (len(x), len(y)) grid
        self.surface_readout.setText(self.point_text(i, j, float(ax[j]), float(ay[i])))

    def fit_camera(self) -> None:
        """Move the 3D camera along its line of sight until the surface, its axes and labels fill the view
        with a margin. pyqtgraph's field of view is horizontal, so a short, wide view shows less height:
        a fixed distance cut off the top of tall surfaces and, in a short window, the front axis."""
        if self.gl_view is None or not len(self.gl_vertices) or self.gl_view.height() < 2:
            return
        self.fitted_size = (self.gl_view.width(), self.gl_view.height())
        pts = [self.gl_vertices]
        if self.gl_text_data:
            pts.append(np.asarray([t[0] for t in self.gl_text_data], dtype=np.float64).reshape(-1, 3))
        pts = np.vstack(pts)
        view = self.gl_view
        for _ in range(6):  # the extent shrinks about as 1/distance: a few steps converge
            px, depth = project(pts, self.camera_matrix(), view.width(), view.height())
            if not np.isfinite(px).all():
                view.opts["distance"] *= 1.5
                continue
            ext = max(np.abs(px[:, 0] / view.width() * 2 - 1).max(), np.abs(px[:, 1] / view.height() * 2 - 1).max())
            if 0.85 <= ext <= FIT_EXTENT:
                break
            view.opts["distance"] *= max(0.5, min(2.0, ext / (FIT_EXTENT - 0.03)))
        view.update()

    def camera_matrix(self) -> np.ndarray:
        """The 3D view's projection x view matrix (4x4, row-major): scene points to clip space."""
        view = self.gl_view
        vp = view.getViewport()
        m = view.projectionMatrix(vp, vp) * view.viewMatrix()
        return np.asarray(m.data(), dtype=np.float64).reshape(4, 4).T  # QMatrix4x4.data() is column-major

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if obj is self.gl_view and event.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self, self.fit_camera)  # after the view has its new size (not once it is gone)
        elif obj is self.gl_view and event.type() == QEvent.Type.MouseMove:
            self._hover_3d(event.position().x(), event.position().y())
        elif obj is self.gl_view and event.type() == QEvent.Type.Leave:
            self.surface_readout.setText(" ")
        return False

    # ------------------------------------------------------------ 3D
    def _ensure_gl(self) -> None:
        if self.tabs.currentIndex() != 1 or self.gl_view is not None or not opengl_status()[0]:
            return
        import pyqtgraph.opengl as gl

        self.gl = gl
        self.gl_view = gl_view_window(self.surface_page)  # its own native window: the main window is not re-created (see gl.py)
        self.gl_view.installEventFilter(self)  # before it joins a layout: its first resize is seen too
        self.gl_view.setCameraPosition(pos=pg.Vector(0, 0, SURFACE_HEIGHT / 4), distance=GL_DISTANCE, elevation=38,
                                       azimuth=-60)
        self.gl_ink = self._screen_3d_colours()
        # no floor grid: a grid drawn over the surface shows through it; axes with ticks stand in for it
        self.gl_surface = gl.GLSurfacePlotItem(shader=None, smooth=False, computeNormals=False)
        self.gl_view.addItem(self.gl_surface)
        self.gl_axes = gl.GLLinePlotItem(mode="lines", color=self.gl_ink, width=1.5, antialias=True)
        self.gl_axes.setGLOptions("translucent")
        self.gl_view.addItem(self.gl_axes)
        self.gl_paths: dict[str, object] = {}  # stage -> its trajectory drawn on the surface
        self.gl_models = gl.GLScatterPlotItem(size=14, color=(0.9, 0.1, 0.1, 1), pxMode=True)
        self.gl_models.setGLOptions("translucent")
        self.gl_view.addItem(self.gl_models)
        self.gl_texts: list = []  # tick labels, axis titles and model names, reused between redraws
        self.gl_text_data: list[tuple] = []
        self.gl_text_rank: list[int] = []  # per text: 0 axis title, 1 model name, 2 tick value (label_layout)
        self.gl_colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), interactive=False,
                                           label=" ")
        self.gl_colorbar_widget = pg.GraphicsLayoutWidget()
        self.gl_colorbar_widget.addItem(self.gl_colorbar)
        self.gl_colorbar_widget.setFixedWidth(120)
        row = QHBoxLayout()
        self.gl_container = QWidget.createWindowContainer(self.gl_view, self.surface_page)
        self.gl_container.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keys (arrows rotate) once clicked
        row.addWidget(self.gl_container, 1)
        row.addWidget(self.gl_colorbar_widget)
        self.surface_layout.addLayout(row, 1)
        self.surface_readout = QLabel(" ")
        self.surface_readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the view
        self.surface_readout.setToolTip("the grid point under the mouse: its coordinates and every metric there")
        self.surface_layout.addWidget(self.surface_readout)
        hint = QLabel("Drag to rotate, wheel to zoom; colour map and log scale as above. "
                      "Heights and colours follow the colour bar; hover a point to read it.")
        hint.setWordWrap(True)  # one line when there is room; never sets the window's minimum width
        self.surface_layout.addWidget(hint)
        QTimer.singleShot(0, self, self.fit_camera)  # once the new view has its size in the layout

    def _screen_3d_colours(self) -> tuple[float, float, float, float]:
        """Sets the 3D view's background for the app's theme (dark or light palette); returns the ink of
        its axes and labels."""
        dark = self.palette().window().color().lightness() < 128
        self.gl_view.setBackgroundColor((30, 30, 33) if dark else (236, 236, 238))
        return (0.85, 0.85, 0.85, 1.0) if dark else (0.15, 0.15, 0.15, 1.0)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """A theme switched live: the 3D view takes the new theme's colours (the 2D plots are restyled
        by ``plot_theme.restyle_plots``)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.gl_view is not None:
            self.gl_ink = self._screen_3d_colours()
            self.gl_axes.setData(color=self.gl_ink)
            self._set_gl_texts(self.gl_text_data)

    def _hide_3d(self) -> None:
        """Empty the 3D view and hide its colour bar (the items stay for reuse)."""
        if self.gl_surface is None:
            return
        self.gl_colorbar_widget.setVisible(False)  # no range of a landscape not shown
        self.gl_surface.setVisible(False)
        self.gl_vertices = np.zeros((0, 3))
        self.gl_models.setData(pos=np.zeros((0, 3)))
        self.gl_axes.setVisible(False)
        for item in self.gl_paths.values():
            item.setVisible(False)
        self._set_gl_texts([])

    def surface_labels(self) -> list[str]:
        """The texts drawn in the 3D view: tick values, axis titles, model names."""
        return [t[1] for t in self.gl_text_data] if self.gl_surface is not None else []

    def _set_gl_texts(self, texts: list[tuple]) -> None:
        """Show these labels ((position, text[, colour])) in the 3D view, reusing the text items."""
        self.gl_text_data = texts
        while len(self.gl_texts) < len(texts):
            font = QFont()
            font.setPointSizeF(8.5)
            item = self.gl.GLTextItem(color=tuple(int(255 * c) for c in self.gl_ink), font=font)
            self.gl_view.addItem(item)
            self.gl_texts.append(item)
        for k, item in enumerate(self.gl_texts):
            if k < len(texts):
                pos, text = texts[k][:2]
                ink = texts[k][2] if len(texts[k]) > 2 else tuple(int(255 * c) for c in self.gl_ink)
                item.setData(pos=np.asarray(pos, dtype=float), text=text, color=ink)
            item.setVisible(k < len(texts))

    def _draw_surface(self, v: np.ndarray, cmap: pg.ColorMap, lo: float, hi: float, label: str) -> None:
        ls = self.ls
        assert ls is not None and self.gl_surface is not None
        x, y = ls.axes["x"], ls.axes["y"]
        sx = SURFACE_SIZE / max(x[-1] - x[0], 1e-12)
        sy = SURFACE_SIZE / max(y[-1] - y[0], 1e-12)
        if ls.kind in ("plane", "pca"):
            sx = sy = min(sx, sy)
        xc, yc = (x[0] + x[-1]) / 2, (y[0] + y[-1]) / 2
        xs, ys = (x - xc) * sx, (y - yc) * sy
        span = hi - lo if hi > lo else 1.0
        z = np.nan_to_num(((v - lo) / span * SURFACE_HEIGHT).T)  # (nx, ny)
        colors = cmap.map(np.clip(np.nan_to_num((v.T - lo) / span), 0, 1).reshape(-1), mode="float").reshape(-1, 4)
        colors[~np.isfinite(v.T).reshape(-1)] = MISSING_RGBA  # not computed yet: grey on the floor, not a copied colour
        self.gl_surface.setData(x=xs, y=ys, z=z, colors=colors)
        gx, gy = np.meshgrid(xs, ys, indexing="ij")  # the vertices as drawn, for the hover read-out
        self.gl_vertices = np.column_stack([gx.ravel(), gy.ravel(), z.ravel()])
        self.gl_surface.setVisible(True)
        self.gl_colorbar_widget.setVisible(True)
        self.gl_colorbar.setColorMap(cmap)
        self.gl_colorbar.setLevels((lo, hi if hi > lo else lo + 1e-9))
        self.gl_colorbar.axis.setLabel(label)

        def on_surface(px: np.ndarray, py: np.ndarray) -> np.ndarray:
            """Heights of the drawn surface at map points (bilinear between the grid's points)."""
            fi = np.interp(px, x, np.arange(len(x)))
            fj = np.interp(py, y, np.arange(len(y)))
            i0 = np.clip(np.floor(fi).astype(int), 0, len(x) - 2)
            j0 = np.clip(np.floor(fj).astype(int), 0, len(y) - 2)
            ti, tj = fi - i0, fj - j0
            return (z[i0, j0] * (1 - ti) * (1 - tj) + z[i0 + 1, j0] * ti * (1 - tj)
                    + z[i0, j0 + 1] * (1 - ti) * tj + z[i0 + 1, j0 + 1] * ti * tj)

        def scene(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
            return np.column_stack([(px - xc) * sx, (py - yc) * sy, pz])

        texts: list[tuple] = []  # (position, text[, colour])
        coords = np.asarray(ls.model_coords, dtype=np.float64).reshape(-1, 2)
        n_models = len(coords)
        if len(coords):
            pts = scene(coords[:, 0], coords[:, 1], on_surface(coords[:, 0], coords[:, 1]) + 0.3)
            self.gl_models.setData(pos=pts)
            texts += [((p[0] + 0.3, p[1] + 0.3, p[2] + 0.6), MODEL_STYLE.get(n, ("", n))[1], MODEL_INK)
                      for p, n in zip(pts, ls.model_names, strict=False)]
        else:
            self.gl_models.setData(pos=np.zeros((0, 3)))
        for item in self.gl_paths.values():
            item.setVisible(False)
        for stage, xy in self.drawn_trajectories.items():
            # each step split in ten, so the line follows the surface between the recorded points
            t = np.linspace(0, 1, 10, endpoint=False)
            dense = np.vstack([a + (b - a) * t[:, None] for a, b in zip(xy[:-1], xy[1:], strict=False)] + [xy[-1:]])
            inside = (dense[:, 0] >= x[0]) & (dense[:, 0] <= x[-1]) & (dense[:, 1] >= y[0]) & (dense[:, 1] <= y[-1])
            dense = dense[inside]
            if stage not in self.gl_paths:
                rgba = pg.mkColor(TRAJECTORY_COLORS.get(stage, "#ffffff")).getRgbF()
                self.gl_paths[stage] = self.gl.GLLinePlotItem(color=rgba, width=3, antialias=True, mode="line_strip")
                self.gl_paths[stage].setGLOptions("translucent")  # depth-tested, blended (antialiased)
                self.gl_view.addItem(self.gl_paths[stage])
            self.gl_paths[stage].setData(pos=scene(dense[:, 0], dense[:, 1], on_surface(dense[:, 0], dense[:, 1]) + 0.4))
            self.gl_paths[stage].setVisible(True)
        # axes along the two front edges (the camera looks from +x, -y), just below the surface, and
        # the height axis up the left corner, each with ticks at round values and a title
        x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]
        base, tick = -0.4, 0.4
        segs = [(x0, y0, base), (x1, y0, base), (x1, y0, base), (x1, y1, base), (x0, y0, 0.0), (x0, y0, SURFACE_HEIGHT)]
        for value in nice_levels(x[0], x[-1], 5):
            px = (value - xc) * sx
            segs += [(px, y0, base), (px, y0 - tick, base)]
            texts.append(((px, y0 - 3 * tick, base), f"{value:.3g}"))
        for value in nice_levels(y[0], y[-1], 5):
            py = (value - yc) * sy
            segs += [(x1, py, base), (x1 + tick, py, base)]
            texts.append(((x1 + 2 * tick, py, base), f"{value:.3g}"))
        for value in nice_levels(lo, hi, 4):
            pz = (value - lo) / span * SURFACE_HEIGHT
            segs += [(x0, y0, pz), (x0 - tick, y0 - tick, pz)]
            texts.append(((x0 - 4 * tick, y0 - 4 * tick, pz), f"{value:.3g}"))
        xlabel, ylabel = axis_names(ls)
        texts += [(((x0 + x1) / 2, y0 - 9 * tick, base - 1.0), xlabel), ((x1 + 6 * tick, (y0 + y1) / 2, base - 1.0), ylabel),
                  ((x0 - 2 * tick, y0 - 2 * tick, SURFACE_HEIGHT + 1.2), label)]
        self.gl_axes.setData(pos=np.asarray(segs, dtype=float))
        self.gl_axes.setVisible(True)
        # what an export keeps first where labels would overlap: axis titles, model names, tick values
        self.gl_text_rank = [1] * n_models + [2] * (len(texts) - n_models - 3) + [0] * 3
        self._set_gl_texts(texts)

    def export_3d(self, path: str, size: tuple[int, int] = (1600, 1200), labels: bool = True,
                  overwrite: bool = False, style: ExportStyle | None = None) -> bool:
        """Render the 3D view to a PNG of the given size in the export style; False when no 3D surface is drawn.

        An existing file is replaced only with ``overwrite`` (the app asks first); written aside and
        renamed, never through a link (``wmstudio.safe_files.atomic_output``). A size outside
        ``label_layout.check_export_size``'s bounds is a ConfigError.

        ``style`` (``ExportStyle``, light unless given) sets the colours, whatever the app's theme: its
        background behind the scene, its text colour for the title, labels, axes and colour bar. Its
        font family and size are used as on paper: the picture is taken to be printed ``width_in``
        inches wide (the PNG records that resolution), so a 9 pt label is 9 pt there at any pixel size;
        never under ``MIN_EXPORT_PX`` pixels, so that small pictures stay legible on screen. The title is
        1.2 times the labels' size.
        The view on screen keeps its own colours.

        The landscape's title runs across the top; below it the surface takes the left of the picture
        and the colour bar (drawn here: gradient, ticks, values, label) its right. The tick values, axis
        titles and model names (drawn over the OpenGL scene on screen) are painted on at the same places,
        none over another (``label_layout.place_labels``); ``labels=False`` leaves them and the title out.
        """
        from wmstudio.gui.label_layout import check_export_size

        w, h = check_export_size(int(size[0]), int(size[1]))
        if not self.has_3d:
            return False
        style = style or ExportStyle()
        background, ink = QColor(style.colors["background"]), QColor(style.colors["foreground"])
        px_per_pt = w / (72.0 * style.width_in)
        font = QFont(style.font_family)
        font.setPixelSize(max(MIN_EXPORT_PX, round(style.font_size * px_per_pt)))
        title_font = QFont(font)
        title_font.setPixelSize(max(round(1.2 * MIN_EXPORT_PX), round(1.2 * style.font_size * px_per_pt)))
        band = int(QFontMetricsF(title_font).height() * 1.6) if labels else 0  # the title's row
        bar_w = self._colorbar_width(QFontMetricsF(font), w)
        gl_w, gl_h = max(16, int(w - bar_w - 0.02 * w)), max(16, h - band)
        arr = self._render_scene((gl_w, gl_h), background, ink)
        scene_img = pg.functions.makeQImage(arr, transpose=arr.shape[:2] != (gl_h, gl_w))
        img = QImage(w, h, QImage.Format.Format_ARGB32)
        img.fill(background)
        dots_per_metre = round(w / style.width_in / 0.0254)
        img.setDotsPerMeterX(dots_per_metre)
        img.setDotsPerMeterY(dots_per_metre)
        painter = QPainter(img)
        painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        painter.drawImage(0, band, scene_img)
        self.export_label_rects = []
        if labels:
            painter.setFont(title_font)
            painter.setPen(ink)
            title = QRectF(0, 0, w, band)
            painter.drawText(title, int(Qt.AlignmentFlag.AlignCenter), self.title_text)
            self.export_label_rects.append(painter.boundingRect(title, int(Qt.AlignmentFlag.AlignCenter), self.title_text))
            self._paint_labels(painter, gl_w, gl_h, band, font, ink, background)
        bar_h = 0.8 * gl_h
        self._paint_colorbar(painter, QRectF(w - bar_w - 0.01 * w, band + (gl_h - bar_h) / 2, bar_w, bar_h), font, ink)
        painter.end()
        from wmstudio.safe_files import atomic_output

        with atomic_output(path, overwrite) as tmp:
            if not img.save(str(tmp), "PNG"):
                raise OSError(f"{path}: cannot write the PNG")
        return True

    def _render_scene(self, size: tuple[int, int], background: QColor, ink: QColor) -> np.ndarray:
        """The OpenGL scene (surface, axes, paths, models; not its texts, which the export paints) at ``size``,
        on ``background`` with the axes in ``ink``; the view on screen keeps its colours."""
        view = self.gl_view
        screen_bg, screen_axes = view.opts["bgcolor"], self.gl_axes.color
        shown = [item.visible() for item in self.gl_texts]
        view.setBackgroundColor(background)
        self.gl_axes.setData(color=ink.getRgbF())
        for item in self.gl_texts:
            item.setVisible(False)
        try:
            return view.renderToArray(size)  # BGRA
        finally:
            view.setBackgroundColor(QColor.fromRgbF(*screen_bg))  # kept as 0..1 floats
            self.gl_axes.setData(color=screen_axes)
            for item, visible in zip(self.gl_texts, shown, strict=True):
                item.setVisible(visible)

    def _colorbar_ticks(self) -> tuple[float, float, np.ndarray]:
        lo, hi = self.gl_colorbar.levels()
        return lo, hi, nice_levels(lo, hi, 5)

    def _colorbar_width(self, metrics: QFontMetricsF, w: int) -> float:
        """The exported colour bar's width: gradient, ticks, the widest value and the rotated label."""
        _lo, _hi, ticks = self._colorbar_ticks()
        text_w = max((metrics.horizontalAdvance(f"{t:.3g}") for t in ticks), default=0.0)
        return max(12.0, 0.03 * w) + 0.6 * metrics.height() + text_w + 1.6 * metrics.height()

    def _paint_colorbar(self, painter: QPainter, rect: QRectF, font: QFont, ink: QColor) -> None:
        """The colour bar of the 3D view in ``rect``: the colour map (its top the highest value), a frame and
        ticks in ``ink``, the values beside the ticks and the metric's name up its right side."""
        lo, hi, ticks = self._colorbar_ticks()
        metrics = QFontMetricsF(font)
        grad = QRectF(rect.left(), rect.top(), max(12.0, rect.width() - 2.2 * metrics.height()
                                                      - max((metrics.horizontalAdvance(f"{t:.3g}") for t in ticks),
                                                            default=0.0)), rect.height())
        colours = self.gl_colorbar.colorMap().map(np.linspace(1.0, 0.0, max(2, int(grad.height()))), mode="qcolor")
        step = grad.height() / len(colours)
        for k, colour in enumerate(colours):
            painter.fillRect(QRectF(grad.left(), grad.top() + k * step, grad.width(), step + 1), colour)
        painter.setPen(ink)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(grad)
        painter.setFont(font)
        tick = 0.3 * metrics.height()
        span = hi - lo if hi > lo else 1.0
        for t in ticks:
            y = grad.bottom() - (t - lo) / span * grad.height()
            painter.drawLine(QPointF(grad.right(), y), QPointF(grad.right() + tick, y))
            painter.drawText(QRectF(grad.right() + 2 * tick, y - metrics.height() / 2, rect.right(), metrics.height()),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), f"{t:.3g}")
        painter.save()
        painter.translate(rect.right() - 0.2 * metrics.height(), rect.center().y())
        painter.rotate(90)
        painter.drawText(QRectF(-rect.height() / 2, 0, rect.height(), metrics.height()),
                         int(Qt.AlignmentFlag.AlignCenter), self.gl_colorbar.axis.labelText)
        painter.restore()

    def _paint_labels(self, painter: QPainter, w: int, h: int, top: int, font: QFont, ink: QColor,
                      halo: QColor) -> None:
        """The 3D view's texts in ``font``, projected as the view projects them onto the scene's ``w`` x ``h`` part
        of the picture (which starts ``top`` pixels down), none over another or over the title; in ``ink``,
        the model names on a ``halo`` (they may lie on the surface's dark colours or beside it)."""
        from wmstudio.gui.label_layout import place_labels

        to_image = QMatrix4x4()
        to_image.viewport(0, h, w, -h)
        mvp = to_image * self.gl_view.projectionMatrix((0, 0, w, h), (0, 0, w, h)) * self.gl_view.viewMatrix()
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        ranks = self.gl_text_rank if len(self.gl_text_rank) == len(self.gl_text_data) else [2] * len(self.gl_text_data)
        asked = []
        for entry in self.gl_text_data:
            at = mvp.map(QVector3D(*entry[0])).toPointF()
            rect = metrics.boundingRect(entry[1])  # relative to the baseline's left end
            asked.append(rect.translated(at.x(), at.y() + top))
        placed = place_labels(list(zip(ranks, asked, strict=True)), QRectF(0, top, w, h), metrics.height())
        for entry, rect in zip(self.gl_text_data, placed, strict=True):
            if rect is None:
                continue  # a tick value that would cover another label
            if len(entry) > 2:  # a model name: on the surface or beside it, so ink on a halo of the background
                outline = QPainterPath()
                outline.addText(rect.left(), rect.top() + metrics.ascent() + (rect.height() - metrics.height()) / 2,
                                font, entry[1])
                painter.strokePath(outline, QPen(halo, max(2.0, 0.25 * metrics.height()), Qt.PenStyle.SolidLine,
                                                 Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
                painter.fillPath(outline, ink)
            else:
                painter.setPen(ink)
                painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                                 | int(Qt.TextFlag.TextDontClip), entry[1])
            self.export_label_rects.append(rect)
