"""The landscape tab's interactive 3D surface (OpenGL): heights and colours of one metric over the grid,
the models and trajectories on it, axes with ticks and titles, a colour bar and a hover read-out.

The OpenGL view is made the first time the page is shown (``ensure_gl``); where no OpenGL context can be
made, the page says why and the 2D map and 1D path work without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from wmstudio.gui.contours import nice_levels
from wmstudio.gui.gl import gl_view_window, opengl_status
from wmstudio.gui.landscape_parts import TRAJECTORY_COLORS, point_text
from wmstudio.gui.surface_pick import pick, project
from wmstudio.landscape.figures import MODEL_STYLE, axis_names
from wmstudio.landscape.kinds.base import stored_kind
from wmstudio.landscape.store import Landscape

MODEL_INK = (255, 255, 255)  # model names on the surface (the models sit in its dark, low-loss parts)
SURFACE_SIZE, SURFACE_HEIGHT = 20.0, 8.0  # the 3D surface's footprint (longer side) and height, in GL units
MISSING_RGBA = (0.55, 0.55, 0.55, 0.35)  # a 3D grid point not computed yet
GL_DISTANCE = 37.0  # the 3D camera's first distance, before fit_camera
FIT_EXTENT = 0.92  # fit_camera: the scene fills at most this share of the view (in normalised coordinates)


def complete_subgrid(x: np.ndarray, y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """While a landscape fills in, the finest sub-grid of every ``stride``-th point (a power of two, as the
    points are computed coarse to fine) whose points are all computed, with its axes; the whole grid when
    complete, or when no such sub-grid has 2 points an axis yet. Drawn in 3D, the points not computed yet
    had been spikes down to the floor between the computed ones."""
    if np.isfinite(v).all():
        return x, y, v
    stride = 2
    while (len(x) - 1) // stride >= 1 and (len(y) - 1) // stride >= 1:
        sub = v[::stride, ::stride]
        if np.isfinite(sub).all():
            return x[::stride], y[::stride], sub
        stride *= 2
    return x, y, v


class LandscapeSurface(QWidget):
    """The 3D surface's page. ``gl_view`` and the items in it exist once ``ensure_gl`` made them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ls: Landscape | None = None  # the landscape drawn
        self.gl: Any = None  # pyqtgraph.opengl, imported once OpenGL works
        self.gl_view: Any = None
        self.gl_surface: Any = None
        self.gl_vertices = np.zeros((0, 3))  # the surface's grid points in the 3D scene
        self.gl_text_data: list[tuple] = []  # (position, text[, colour]) of each label drawn
        self.gl_text_rank: list[int] = []  # per text: 0 axis title, 1 model name, 2 tick value (label_layout)
        self.fitted_for: tuple[str, str] | None = None  # the landscape the camera was last fitted to
        self.fitted_size = (0, 0)  # the 3D view's size when its camera was last fitted
        self.surface_layout = QVBoxLayout(self)
        self.surface_note = QLabel("")  # says why the surface is empty, when it is
        self.surface_note.setVisible(False)
        self.surface_layout.addWidget(self.surface_note)
        ok, reason = opengl_status()
        self.gl_reason = reason
        if not ok:
            note = QLabel(f"The 3D view needs OpenGL, which is not available here: {reason}.\n"
                          "The 2D map and the 1D path views work without it.")
            note.setAlignment(Qt.AlignmentFlag.AlignCenter)
            note.setWordWrap(True)
            self.surface_layout.addWidget(note)

    def set_note(self, text: str) -> None:
        """Say ``text`` above the view ("": no note)."""
        self.surface_note.setText(text)
        self.surface_note.setVisible(bool(text))

    @property
    def has_surface(self) -> bool:
        """Whether a surface is drawn in a view that has its OpenGL context (made the first time its window
        is on screen)."""
        return self.gl_view is not None and self.gl_view.isValid() and self.gl_surface is not None \
            and self.gl_surface.visible()

    # ------------------------------------------------------------ the OpenGL view
    def ensure_gl(self) -> bool:
        """Make the OpenGL view, once, where OpenGL works; True when it was made now (draw into it)."""
        if self.gl_view is not None or not opengl_status()[0]:
            return False
        import pyqtgraph.opengl as gl

        self.gl = gl
        self.gl_view = gl_view_window(self)  # its own native window: the main window is not re-created (see gl.py)
        self.gl_view.installEventFilter(self)  # before it joins a layout: its first resize is seen too
        self.gl_view.setCameraPosition(pos=pg.Vector(0, 0, SURFACE_HEIGHT / 4), distance=GL_DISTANCE, elevation=38,
                                       azimuth=-60)
        self.gl_ink = self._screen_colours()
        # no floor grid: a grid drawn over the surface shows through it; axes with ticks stand in for it
        self.gl_surface = gl.GLSurfacePlotItem(shader=None, smooth=False, computeNormals=False)
        self.gl_view.addItem(self.gl_surface)
        self.gl_axes = gl.GLLinePlotItem(mode="lines", color=self.gl_ink, width=1.5, antialias=True)
        self.gl_axes.setGLOptions("translucent")
        self.gl_view.addItem(self.gl_axes)
        self.gl_paths: dict[str, Any] = {}  # stage -> its trajectory drawn on the surface
        self.gl_models = gl.GLScatterPlotItem(size=14, color=(0.9, 0.1, 0.1, 1), pxMode=True)
        from OpenGL import GL

        # drawn over the surface, as their names are: a model behind a hill had its name floating with no marker
        self.gl_models.setGLOptions({GL.GL_DEPTH_TEST: False, GL.GL_BLEND: True,
                                     "glBlendFunc": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)})
        self.gl_models.setDepthValue(10)  # after the surface and the paths
        self.gl_view.addItem(self.gl_models)
        self.gl_texts: list = []  # tick labels, axis titles and model names, reused between redraws
        self.gl_colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), interactive=False,
                                           label=" ")
        self.gl_colorbar_widget = pg.GraphicsLayoutWidget()
        self.gl_colorbar_widget.addItem(self.gl_colorbar)
        self.gl_colorbar_widget.setFixedWidth(120)
        row = QHBoxLayout()
        self.gl_container = QWidget.createWindowContainer(self.gl_view, self)
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
        return True

    def _screen_colours(self) -> tuple[float, float, float, float]:
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
            self.gl_ink = self._screen_colours()
            self.gl_axes.setData(color=self.gl_ink)
            self.set_texts(self.gl_text_data)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if obj is self.gl_view and event.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self, self.fit_camera)  # after the view has its new size (not once it is gone)
        elif obj is self.gl_view and event.type() == QEvent.Type.MouseMove:
            self.hover_at(event.position().x(), event.position().y())
        elif obj is self.gl_view and event.type() == QEvent.Type.Leave:
            self.surface_readout.setText(" ")
        return False

    # ------------------------------------------------------------ camera and read-out
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
            px, _depth = project(pts, self.camera_matrix(), view.width(), view.height())
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

    def hover_at(self, x: float, y: float) -> None:
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
        self.surface_readout.setText(point_text(self.ls, i, j, float(ax[j]), float(ay[i])))

    # ------------------------------------------------------------ drawing
    def hide_surface(self) -> None:
        """Empty the 3D view and hide its colour bar (the items stay for reuse)."""
        self.ls = None
        if self.gl_surface is None:
            return
        self.gl_colorbar_widget.setVisible(False)  # no range of a landscape not shown
        self.gl_surface.setVisible(False)
        self.gl_vertices = np.zeros((0, 3))
        self.gl_models.setData(pos=np.zeros((0, 3)))
        self.gl_axes.setVisible(False)
        for item in self.gl_paths.values():
            item.setVisible(False)
        self.set_texts([])

    def forget_camera(self) -> None:
        """The next landscape drawn is framed afresh (another log was opened)."""
        self.fitted_for = None

    def surface_labels(self) -> list[str]:
        """The texts drawn in the 3D view: tick values, axis titles, model names."""
        return [t[1] for t in self.gl_text_data] if self.gl_surface is not None else []

    def set_texts(self, texts: list[tuple]) -> None:
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

    def draw(self, ls: Landscape, v: np.ndarray, cmap: pg.ColorMap, lo: float, hi: float, label: str,
             trajectories: dict[str, np.ndarray]) -> None:
        """Draw ``v`` (``ls``' grid of the metric named ``label``) as heights and colours between ``lo`` and
        ``hi``, with the models and ``trajectories`` on it; a new landscape is framed once (a user's zoom
        then stays). Nothing happens before the OpenGL view exists."""
        if self.gl_surface is None:
            return
        self.ls = ls
        self._draw_surface(ls, v, cmap, lo, hi, label, trajectories)
        if self.fitted_for != (ls.name, ls.kind):
            self.fitted_for = (ls.name, ls.kind)
            self.fit_camera()

    def _draw_surface(self, ls: Landscape, v: np.ndarray, cmap: pg.ColorMap, lo: float, hi: float, label: str,
                      trajectories: dict[str, np.ndarray]) -> None:
        x, y, v = complete_subgrid(ls.axes["x"], ls.axes["y"], v)
        sx = SURFACE_SIZE / max(x[-1] - x[0], 1e-12)
        sy = SURFACE_SIZE / max(y[-1] - y[0], 1e-12)
        if stored_kind(ls.kind).equal_aspect:
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
        for stage, xy in trajectories.items():
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
        self.set_texts(texts)
