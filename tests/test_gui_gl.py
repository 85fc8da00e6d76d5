"""The 3D landscape view, which needs a real OpenGL context: run under Xvfb (``make test`` does).

Skipped on the offscreen Qt platform, where pyqtgraph's GLViewWidget would crash.
"""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import export_plots, make_window, open_log, settle
from PySide6.QtGui import QImage

from wmstudio.config_io import load_config
from wmstudio.landscape import LandscapeSpec, compute_landscape, read
from wmstudio.pipeline import run_experiment
from wmstudio.resources import example_config

pytestmark = pytest.mark.gl


@pytest.fixture()
def gl_ok(qapp) -> None:  # noqa: ANN001
    from wmstudio.gui.gl import opengl_status

    ok, reason = opengl_status()
    if not ok:
        pytest.skip(f"no OpenGL here ({reason}); run under Xvfb: xvfb-run -a pytest -m gl")


def test_3d_surface_shows_the_landscape_and_exports_png(qtbot, tmp_path, gl_ok) -> None:
    log = tmp_path / "run.h5"
    run_experiment(load_config(example_config("demo"), ["run.threads=2", "embed.epochs=6", "finetune.epochs=2",
                                                        "restore.epochs=2"]), log)
    compute_landscape(log, LandscapeSpec(kind="plane", resolution=9, images=200))
    win = make_window(qtbot, tmp_path)
    win.show()
    qtbot.waitExposed(win)
    open_log(qtbot, win, log)
    lv = win.tabs.landscape_view
    win.tabs.setCurrentWidget(lv)
    lv.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: lv.has_3d)  # the view has its OpenGL context and draws the surface
    assert lv.gl_view is not None and lv.gl_surface is not None
    stored = read(log, "plane")
    z = lv.gl_surface._z
    assert z.shape == (9, 9)  # (len(x), len(y))
    # heights follow the drawn metric: the highest trigger loss is the highest point
    i, j = np.unravel_index(np.nanargmax(stored.metrics["trigger_loss"]), (9, 9))
    assert z[j, i] == pytest.approx(z.max())
    assert len(lv.gl_models.pos) == 3
    lv.log_scale.setChecked(True)
    assert lv.gl_surface._z.max() == pytest.approx(8.0)
    out = tmp_path / "surface.png"
    assert lv.export_3d(str(out), (640, 480))
    img = QImage(str(out))
    assert (img.width(), img.height()) == (640, 480)
    pixels = {img.pixel(x, y) for x in range(0, 640, 16) for y in range(0, 480, 16)}
    assert len(pixels) > 20  # a rendered surface, not a blank image
    written = export_plots(win, tmp_path / "all")
    assert tmp_path / "all" / "landscape_3d.png" in written
    win.menuBar().actions()[0].menu().aboutToShow.emit()
    assert win.export_3d_action.isEnabled()
    # a new run: its log has no landscape, so there is no 3D view to export (and none is offered)
    win.control.jobs.start = lambda kind, job: None  # the run itself is not the point here
    assert win.start_run() is not None
    win.control.jobs.done.emit("run", None)  # ... and it ends at once
    assert not lv.has_3d and not lv.export_3d(str(tmp_path / "stale.png"))
    assert tmp_path / "later" / "landscape_3d.png" not in export_plots(win, tmp_path / "later")
    win.menuBar().actions()[0].menu().aboutToShow.emit()
    assert not win.export_3d_action.isEnabled()


def test_3d_surface_has_axes_a_colour_bar_named_models_and_paths_on_it(qtbot, tmp_path, gl_ok) -> None:
    from gui_helpers import pca_surface_view

    from wmstudio.gui.landscape_view import SURFACE_HEIGHT

    lv, ls = pca_surface_view(qtbot)
    import pyqtgraph.opengl as gl

    assert not any(isinstance(item, gl.GLGridItem) for item in lv.gl_view.items)  # no floor grid through the surface
    labels = lv.surface_labels()
    assert {"PC 1 (72.3% of variance)", "PC 2 (18.1% of variance)", "trigger-set loss"} <= set(labels)
    assert {"watermarked", "fine-tuned", "restored"} <= set(labels)
    assert {"0.5", "1", "1.5", "2"} <= set(labels)  # the height axis reads the loss (0.1 .. 2.1)
    assert lv.gl_axes.visible() and len(lv.gl_axes.pos) >= 6
    assert lv.gl_colorbar.levels() == pytest.approx((0.1, 2.1)) and lv.gl_colorbar.axis.labelText == "trigger-set loss"
    # the embed trajectory lies on the surface: just above it at every point
    path = lv.gl_paths["embed"]
    assert path.visible() and "pretrain" not in lv.gl_paths  # the pretrain path is off this map
    z = lv.gl_surface._z
    xs, ys = lv.gl_surface._x, lv.gl_surface._y
    for px, py, pz in path.pos[::7]:
        i = int(np.clip(np.searchsorted(xs, px) - 1, 0, len(xs) - 2))
        j = int(np.clip(np.searchsorted(ys, py) - 1, 0, len(ys) - 2))
        corners = z[i:i + 2, j:j + 2]  # the grid cell under the point
        assert corners.min() < pz <= corners.max() + 0.1 * SURFACE_HEIGHT, (px, py, pz, corners)
    # the exported PNG: the colour bar on its right, the labels painted where the screen has them
    from gui_helpers import colour_box, image_array
    from PySide6.QtGui import QImage

    shots = {}
    for labels in (True, False):
        out = str(tmp_path / f"surface_{labels}.png")
        assert lv.export_3d(out, (900, 600), labels=labels)
        shots[labels] = image_array(QImage(out))
    assert shots[True].shape[:2] == (600, 900)
    top, bottom = lv.gl_colorbar.colorMap().map([1.0, 0.0], mode="qcolor")
    strip = shots[True][:, int(0.85 * 900):]  # the right of the picture: the bar, its top colour above its bottom
    boxes = [colour_box(strip, colour.name(), tol=20) for colour in (top, bottom)]
    assert None not in boxes and boxes[0][2] < boxes[1][2], boxes

    def ink(a: np.ndarray) -> int:  # dark grey text and lines
        return int((np.abs(a[..., :3].astype(int) - [38, 38, 38]).sum(-1) < 60).sum())

    assert ink(shots[True]) > ink(shots[False]) + 200
    # hover: a real mouse move onto a grid point's projected position reads that point
    from PySide6.QtCore import QPoint

    from wmstudio.gui.surface_pick import project

    view = lv.gl_view
    lv.surface_readout.setText(" ")
    settle(qtbot, view)  # the layout settles before the points are projected
    width = view.width()
    px, _depth = project(lv.gl_vertices, lv.camera_matrix(), view.width(), view.height())
    k = (10 * 21 + 10)  # the grid's centre (x index 10, y index 10): in front, in view
    qtbot.mouseMove(view, QPoint(int(round(px[k, 0])), int(round(px[k, 1]))))
    names = [n.split(" (")[0] for n in ("PC 1 (72.3% of variance)", "PC 2 (18.1% of variance)")]
    want = f"{names[0]} {ls.axes['x'][10]:.4g}, {names[1]} {ls.axes['y'][10]:.4g}"
    qtbot.waitUntil(lambda: want in lv.surface_readout.text(), timeout=3000)
    assert view.width() == width  # a long read-out does not squeeze the view
    assert f"trigger-set loss {ls.metrics['trigger_loss'][10, 10]:.4g}" in lv.surface_readout.text()
    qtbot.mouseMove(view, QPoint(3, 3))  # off the surface: no read-out
    qtbot.waitUntil(lambda: lv.surface_readout.text() == " ", timeout=3000)
    lv.log_scale.setChecked(True)
    assert lv.gl_colorbar.axis.labelText == "log10 trigger-set loss"
    lv.clear()
    assert not lv.has_3d and not lv.surface_labels() and not lv.gl_axes.visible() and not path.visible()


@pytest.mark.parametrize("size", [(1280, 720), (1600, 560), (900, 900)])
def test_the_whole_3d_surface_is_in_view_whatever_the_window_shape(qtbot, gl_ok, size) -> None:
    from gui_helpers import fake_landscape
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from wmstudio.gui.landscape_view import LandscapeView
    from wmstudio.gui.surface_pick import project

    box = QWidget()
    lv = LandscapeView()
    QVBoxLayout(box).addWidget(lv)
    qtbot.addWidget(box)
    box.resize(*size)
    box.show()
    qtbot.waitExposed(box)
    lv.tabs.setCurrentIndex(1)
    lv.show_landscape(fake_landscape("plane", n=15))
    qtbot.waitUntil(lambda: lv.has_3d)
    view = lv.gl_view
    qtbot.waitUntil(lambda: lv.fitted_size == (view.width(), view.height()), timeout=3000)  # framed at its size
    px, _ = project(lv.gl_vertices, lv.camera_matrix(), view.width(), view.height())
    assert (px[:, 0] >= 0).all() and (px[:, 0] <= view.width()).all(), (view.width(), px[:, 0].min(), px[:, 0].max())
    assert (px[:, 1] >= 0).all() and (px[:, 1] <= view.height()).all(), (view.height(), px[:, 1].min(), px[:, 1].max())


def test_a_3d_export_is_light_with_dark_text_in_the_dark_theme_and_follows_the_export_font(
        qtbot, qapp, tmp_path, gl_ok) -> None:  # noqa: ANN001
    """Exports follow the export style (light unless asked), whatever the app's theme; the screen keeps its
    dark view. The font size is the style's points at the style's width."""
    from gui_helpers import image_array, pca_surface_view

    from wmstudio.figures.style import ExportStyle
    from wmstudio.gui import theme

    theme.apply(qapp, "dark")
    try:
        lv, _ls = pca_surface_view(qtbot)
        screen_bg = tuple(lv.gl_view.opts["bgcolor"])
        assert max(screen_bg[:3]) < 0.3  # the view on screen is dark
        out = tmp_path / "dark_theme.png"
        assert lv.export_3d(str(out), (800, 600))
        shot = image_array(QImage(str(out)))[..., :3].astype(int)
        assert tuple(lv.gl_view.opts["bgcolor"]) == screen_bg  # the screen keeps its colours
        for y, x in ((2, 2), (597, 2), (300, 5), (2, 797)):  # corners and the left edge: the background
            assert shot[y, x].min() > 240, (y, x, shot[y, x])
        dark = shot.max(-1) < 90
        title = lv.export_label_rects[0]
        assert dark[: int(title.bottom()) + 1].sum() > 30  # the title in dark ink
        labels = lv.export_label_rects[1:]
        assert labels and sum(dark[int(r.top()):int(r.bottom()) + 1, int(r.left()):int(r.right()) + 1].sum()
                              for r in labels) > 100  # axis titles and ticks dark too
        assert dark[:, int(0.93 * 800):].sum() > 50  # the colour bar's values and label
        heights = {}
        for size in (9.0, 16.0):
            assert lv.export_3d(str(tmp_path / f"f{size}.png"), (800, 600),
                                style=ExportStyle(font_size=size, width_in=8.0))
            heights[size] = lv.export_label_rects[0].height()
            assert QImage(str(tmp_path / f"f{size}.png")).dotsPerMeterX() == round(100 / 0.0254)  # 100 dpi
        assert heights[16.0] / heights[9.0] == pytest.approx(16 / 9, rel=0.2)
        # the style's dark theme (export settings: "follow the app's theme") exports dark
        assert lv.export_3d(str(tmp_path / "d.png"), (800, 600), style=ExportStyle(theme="dark"))
        assert image_array(QImage(str(tmp_path / "d.png")))[2, 2, :3].max() < 60
    finally:
        theme.apply(qapp, "light")


def test_the_first_switch_to_3d_keeps_the_window_and_two_views_draw_without_gl_errors(qtbot, capfd, gl_ok) -> None:  # noqa: ANN001
    """The 3D view draws in a native child window of its own: the first switch to it leaves the top-level
    window as it is (a QOpenGLWidget made Qt destroy and re-create it: the window vanished and came back
    black for a second or more). A second view (its own OpenGL context) draws with the first one's shader
    programs without "GLError ... invalid value" (the app's contexts share their objects)."""
    from gui_helpers import fake_landscape
    from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

    from wmstudio.gui.landscape_view import LandscapeView

    views = []
    for _ in range(2):
        box = QWidget()
        lv = LandscapeView()
        QVBoxLayout(box).addWidget(lv)
        qtbot.addWidget(box)
        box.resize(900, 600)
        box.show()
        qtbot.waitExposed(box)
        lv.show_landscape(fake_landscape("pca", n=11))
        native, handle = int(box.winId()), box.windowHandle()
        surface = handle.surfaceType()
        lv.tabs.setCurrentIndex(1)
        qtbot.waitUntil(lambda lv=lv: lv.has_3d, timeout=20_000)
        for _ in range(2):  # frames drawn
            with qtbot.waitSignal(lv.gl_view.frameSwapped, timeout=10_000):
                lv.gl_view.update()
        assert box.windowHandle() is handle and int(box.winId()) == native  # not re-created
        assert handle.surfaceType() == surface
        views.append((box, lv))
    for _box, lv in views:
        with qtbot.waitSignal(lv.gl_view.frameSwapped, timeout=10_000):
            lv.gl_view.update()
    QApplication.processEvents()
    assert "GLError" not in capfd.readouterr().err


def test_the_3d_view_follows_a_live_theme_switch_and_hides_its_colour_bar_without_a_surface(
        qtbot, qapp, gl_ok) -> None:  # noqa: ANN001
    """Switched to dark while shown: the 3D view's background and labels turn dark/light as the rest of
    the app (they kept the start-up theme's). A 1D path shown next: the 3D view is empty and its colour
    bar (the previous surface's range) is hidden."""
    from gui_helpers import fake_landscape, pca_surface_view
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui import theme

    lv, _ls = pca_surface_view(qtbot)
    assert min(lv.gl_view.opts["bgcolor"][:3]) > 0.8 and not lv.gl_colorbar_widget.isHidden()
    try:
        theme.apply(qapp, "dark")
        QApplication.processEvents()
        assert max(lv.gl_view.opts["bgcolor"][:3]) < 0.3
        assert min(lv.gl_axes.color[:3]) > 0.7  # light axes and ticks on the dark view
        ticks = [item for item, entry in zip(lv.gl_texts, lv.gl_text_data, strict=False) if len(entry) == 2]
        assert ticks and all(item.color.lightness() > 180 for item in ticks)
    finally:
        theme.apply(qapp, "light")
        QApplication.processEvents()
    assert min(lv.gl_view.opts["bgcolor"][:3]) > 0.8
    lv.show_landscape(fake_landscape("line"))
    QApplication.processEvents()
    assert not lv.has_3d and lv.gl_colorbar_widget.isHidden()  # hidden, not just on another tab
    lv.show_landscape(fake_landscape("pca", name="again", n=11))
    lv.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: lv.has_3d)
    assert lv.gl_colorbar_widget.isVisible()


def test_opening_the_3d_view_does_not_widen_the_windows_minimum(qtbot, gl_ok) -> None:  # noqa: ANN001
    """The 3D page's help line wraps: it set the landscape view's minimum width to ~840 px (the window's
    to ~1150 px) once the 3D tab had been opened."""
    from gui_helpers import pca_surface_view

    lv, _ls = pca_surface_view(qtbot)
    assert lv.minimumSizeHint().width() < 400
