"""The landscape tab's panels, each built on its own: the controls (a form generated from LandscapeSpec's
limits), the 2D map, the 1D path, the 3D surface (its fallback without OpenGL here; the OpenGL view and the
export under Xvfb, marked gl) and the view composing them. Tests wait on signals, never a fixed time."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from gui_helpers import fake_landscape
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox

from wmstudio.landscape.spec import KINDS, LINE_KINDS, PRECISIONS, LandscapeSpec, limits

# ---------------------------------------------------------------- controls


def test_the_controls_form_is_generated_from_the_spec_limits(qtbot) -> None:  # noqa: ANN001
    from wmstudio.gui.landscape_controls import FORM_FIELDS, LandscapeControls

    controls = LandscapeControls()
    qtbot.addWidget(controls)
    meta = {f.name: f.metadata for f in dataclasses.fields(LandscapeSpec)}
    for name, w in controls.fields.items():
        assert name in FORM_FIELDS
        if meta[name]["choices"]:
            assert isinstance(w, QComboBox)
            assert [w.itemText(i) for i in range(w.count())] == list(meta[name]["choices"])
        elif isinstance(w, QDoubleSpinBox):  # a float setting: its bounds, an excluded lower one kept out
            lo, hi = limits(name, controls.kind.currentText())
            assert w.maximum() == hi and (w.minimum() > lo if meta[name]["min_exclusive"] else w.minimum() == lo)
        else:
            assert isinstance(w, QSpinBox)
            assert (w.minimum(), w.maximum()) == limits(name, controls.kind.currentText())
            assert "allowed: a whole number from" in w.toolTip()
    assert [controls.kind.itemText(i) for i in range(controls.kind.count())] == list(KINDS)
    assert [controls.precision.itemText(i) for i in range(controls.precision.count())] == list(PRECISIONS)
    assert controls.images.maximum() == limits("images")[1] == 10**7  # one set of limits: the engine's
    assert controls.resolution.maximum() == limits("resolution", "plane")[1]
    line = LINE_KINDS[0]
    controls.kind.setCurrentText(line)  # a path allows more points than a grid, and two at least
    assert (controls.resolution.minimum(), controls.resolution.maximum()) == limits("resolution", line)
    controls.resolution.setValue(limits("resolution", line)[1])
    controls.spec().check()  # the box's highest value is one the engine takes
    controls.kind.setCurrentText("plane")
    assert controls.resolution.value() == limits("resolution", "plane")[1]  # kept within the grid's bound
    controls.spec().check()


def test_the_controls_ask_for_a_landscape_and_the_published_view(qtbot) -> None:  # noqa: ANN001
    from wmstudio.gui.landscape_controls import LandscapeControls

    controls = LandscapeControls()
    qtbot.addWidget(controls)
    controls.kind.setCurrentText("random")
    controls.resolution.setValue(21)
    controls.images.setValue(1000)
    with qtbot.waitSignal(controls.compute_requested) as asked:
        controls.compute_button.click()
    spec = asked.args[0]
    assert (spec.kind, spec.name, spec.resolution, spec.images) == ("random", "random-21-1000img", 21, 1000)
    controls.metric_box.setCurrentIndex(0)
    with qtbot.waitSignal(controls.published_requested) as asked:
        controls.published_button.click()
    spec = asked.args[0]
    assert (spec.kind, spec.name, spec.resolution, spec.images) == ("pca", "published-1000img", 21, 1000)
    assert controls.kind.currentText() == "pca" and controls.metric == "trigger_loss"  # the form says what runs
    with qtbot.waitSignal(controls.display_changed):
        controls.log_scale.setChecked(True)
    with qtbot.waitSignal(controls.stop_requested):
        controls.set_computing(True)
        assert not controls.compute_button.isEnabled()
        controls.stop_button.click()
    controls.set_computing(False)
    controls.set_can_compute(False, "open or run an experiment first")
    assert not controls.compute_button.isEnabled() and "open or run" in controls.compute_button.toolTip()


def test_the_controls_disable_kinds_a_log_cannot_have(qtbot) -> None:  # noqa: ANN001
    from wmstudio.gui.landscape_controls import LandscapeControls

    controls = LandscapeControls()
    qtbot.addWidget(controls)
    controls.kind.setCurrentText("plane")
    controls.set_kind_reasons({"plane": "needs exactly 3 stages"})
    assert controls.kind.currentText() != "plane"
    assert not controls.kind.model().item(controls.kind.findText("plane")).isEnabled()
    controls.set_stored(["a", "b"], "b")
    with qtbot.waitSignal(controls.landscape_selected) as chosen:
        controls.stored.activated.emit(0)
    assert chosen.args == ["b"]


# ---------------------------------------------------------------- 2D map and 1D path


def test_the_map_panel_draws_a_grid_with_models_contours_and_a_read_out(qtbot) -> None:  # noqa: ANN001
    import pyqtgraph as pg

    from wmstudio.gui.landscape_map import LandscapeMap
    from wmstudio.gui.landscape_parts import shown_values, visible_trajectories

    panel = LandscapeMap()
    qtbot.addWidget(panel)
    ls = fake_landscape("plane")
    v = shown_values(ls, "trigger_loss", False)
    trajectories = visible_trajectories(ls)
    assert list(trajectories) == ["embed"]  # the pretrain path lies far off the map
    panel.draw(ls, v, pg.colormap.get("viridis"), float(v.min()), float(v.max()), "trigger-set loss", "a title",
               trajectories, True, ("trigger_loss", False))
    assert panel.image.image.shape == v.shape and panel.colorbar.isVisible()
    assert len(panel.model_labels) == 3 and len(panel.trajectory_items) == 1 and panel.contour_items
    panel.hover_at((panel.map.vb.mapViewToScene(pg.Point(0.0, 0.0)),))
    assert "trigger-set loss" in panel.hover.text()
    panel.clear()
    assert panel.image.image is None and not panel.contour_items and panel.hover.text() == " "


def test_the_path_panel_draws_a_path_with_its_models(qtbot) -> None:  # noqa: ANN001
    from wmstudio.gui.landscape_path import LandscapePath

    panel = LandscapePath()
    qtbot.addWidget(panel)
    ls = fake_landscape("line")
    panel.draw(ls, False)
    x, y = panel.path_curves["trigger_loss"].getData()
    assert np.allclose(x, ls.axes["t"]) and len(panel.path_lines) == 6  # three models on two plots
    t, text = panel.describe_at(panel.path_loss, 0.25, 0.0)
    assert t == pytest.approx(ls.axes["t"][np.argmin(np.abs(ls.axes["t"] - 0.25))]) and "clean" in text.lower()
    panel.clear()
    assert panel.path_curves["trigger_loss"].getData()[0] is None or not len(panel.path_curves["trigger_loss"].getData()[0])
    assert not panel.path_lines


def test_the_surface_panel_without_opengl_says_why_and_draws_nothing(qtbot, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QLabel

    from wmstudio.gui import gl
    from wmstudio.gui.landscape_surface import LandscapeSurface

    monkeypatch.setattr(gl, "_cached", (False, "no OpenGL in this test"))
    panel = LandscapeSurface()
    qtbot.addWidget(panel)
    assert any("needs OpenGL" in w.text() for w in panel.findChildren(QLabel))
    assert not panel.ensure_gl() and panel.gl_view is None and not panel.has_surface
    ls = fake_landscape("plane")
    v = ls.metrics["trigger_loss"]
    import pyqtgraph as pg

    panel.draw(ls, v, pg.colormap.get("viridis"), 0.0, 1.0, "loss", {})  # no view: nothing to draw into
    assert panel.surface_labels() == [] and not panel.has_surface


@pytest.mark.gl
def test_the_surface_panel_draws_in_opengl_and_the_export_helper_paints_its_labels(qtbot, tmp_path) -> None:  # noqa: ANN001
    import pyqtgraph as pg
    from PySide6.QtGui import QImage

    from wmstudio.gui.gl import opengl_status
    from wmstudio.gui.landscape_export import export_surface
    from wmstudio.gui.landscape_parts import shown_values, visible_trajectories
    from wmstudio.gui.landscape_surface import LandscapeSurface

    ok, reason = opengl_status()
    if not ok:
        pytest.skip(f"no OpenGL here ({reason}); run under Xvfb: xvfb-run -a pytest -m gl")
    panel = LandscapeSurface()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.ensure_gl() and not panel.ensure_gl()  # made once
    ls = fake_landscape("plane", n=11)
    v = shown_values(ls, "trigger_loss", False)
    panel.draw(ls, v, pg.colormap.get("viridis"), float(v.min()), float(v.max()), "trigger-set loss",
               visible_trajectories(ls))
    qtbot.waitUntil(lambda: panel.has_surface)
    view = panel.gl_view
    qtbot.waitUntil(lambda: panel.fitted_size == (view.width(), view.height()), timeout=5000)
    assert "trigger-set loss" in panel.surface_labels() and len(panel.gl_vertices) == v.size
    rects = export_surface(panel, str(tmp_path / "s.png"), (640, 480), "a title")
    assert QImage(str(tmp_path / "s.png")).size().width() == 640 and len(rects) > 3
    panel.hide_surface()
    assert not panel.has_surface and panel.surface_labels() == []


# ---------------------------------------------------------------- the view composing them


def test_the_view_composes_the_panels_and_keeps_its_names(qtbot) -> None:  # noqa: ANN001
    from wmstudio.events import LandscapeFinished, LandscapePoints, LandscapeStarted
    from wmstudio.gui.landscape_view import LandscapeView

    view = LandscapeView()
    qtbot.addWidget(view)
    assert view.kind is view.controls.kind and view.map is view.map_panel.map and view.path_curves is view.path.path_curves
    with qtbot.waitSignal(view.compute_requested) as asked:
        view.compute_button.click()
    assert asked.args[0].kind == view.kind.currentText()
    view.tabs.setCurrentIndex(1)
    with qtbot.waitSignal(view.compute_requested) as asked:  # published: the map's tab, the PCA plane
        view.published_button.click()
    assert asked.args[0].kind == "pca" and view.tabs.currentIndex() == 0
    ls = fake_landscape("plane", status="running", done=False)
    view.apply_events([LandscapeStarted("run.h5", ls.name, ls.kind, ls.done.shape, 0, ls)])
    assert view.current_name == ls.name and "(filling in)" not in view.map.titleLabel.text
    idx = np.arange(ls.done.size // 2)
    values = {m: np.full(len(idx), 0.5) for m in ls.metrics}
    view.set_computing(True)
    view.apply_events([LandscapePoints(ls.name, 1, idx.tolist(), values, len(idx), ls.done.size)])
    assert "(filling in)" in view.title_text and view.image.image is not None
    view.apply_events([LandscapeFinished(ls.name, "cancelled", 1.0)])
    assert "cancelled" in view.status.text()
    view.show_landscape(fake_landscape("line"))
    assert view.tabs.currentIndex() == 2 and "1D path" in view.surface_note.text()
    view.clear()
    assert view.current_name == "" and view.stored.count() == 0 and not view.empty.isHidden()


# ---------------------------------------------------------------- threads


def test_a_job_thread_restores_the_switch_interval_when_the_last_one_ends(qtbot) -> None:  # noqa: ANN001
    import sys

    from wmstudio.gui.worker import SWITCH_INTERVAL_S, JobThread, start_thread

    before = sys.getswitchinterval()
    release = threading.Event()
    seen: list[float] = []

    def job(_cb, _ctl) -> float:  # noqa: ANN001
        release.wait(30)
        seen.append(sys.getswitchinterval())
        return 1.0

    first, second = JobThread(job, "a"), JobThread(job, "b")
    with qtbot.waitSignals([first.started, second.started]):
        start_thread(first)
        start_thread(second)
    with qtbot.waitSignals([first.finished, second.finished], timeout=30_000):
        release.set()
    assert seen == [pytest.approx(SWITCH_INTERVAL_S)] * 2  # short while any ran
    assert sys.getswitchinterval() == pytest.approx(before)  # restored once the last ended


def test_a_sweep_folder_is_read_off_the_ui_thread(qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from wmstudio.errors import WmStudioError
    from wmstudio.gui import sweep_view
    from wmstudio.gui.sweep_view import SweepView

    readers: list[threading.Thread] = []

    def collect(folder):  # noqa: ANN001, ANN202
        readers.append(threading.current_thread())
        raise WmStudioError(f"{folder}: no sweep here")

    monkeypatch.setattr(sweep_view, "collect", collect)
    sv = SweepView()
    qtbot.addWidget(sv)
    with qtbot.waitSignal(sv.refreshed, timeout=30_000) as read:
        assert sv.open_folder(tmp_path)
    assert read.args == [False] and "no sweep here" in sv.status.text() and not sv.timer.isActive()
    assert readers and readers[0] is not threading.main_thread()


def test_the_controls_show_each_kinds_own_settings_and_pass_them_on(qtbot) -> None:  # noqa: ANN001
    """Issue 26: the span of the Hessian (and random) grids, the Hessian's loss and the curve's training could
    be set from the CLI only; the form now shows them while such a kind is chosen."""
    from wmstudio.gui.landscape_controls import KIND_FIELDS, LandscapeControls

    controls = LandscapeControls()
    qtbot.addWidget(controls)
    controls.show()
    for kind in KINDS:
        controls.kind.setCurrentText(kind)
        for name, kinds in KIND_FIELDS.items():
            assert controls.fields[name].isVisible() == (kind in kinds), (kind, name)
            assert controls.labels[name].isVisible() == (kind in kinds)
    controls.kind.setCurrentText("hessian")
    controls.fields["span"].setValue(0.25)
    controls.fields["loss"].setCurrentText("trigger")
    spec = controls.spec()
    assert (spec.kind, spec.span, spec.loss, spec.name) == ("hessian", 0.25, "trigger", "hessian-31-span0.25-trigger")
    spec.check()
    controls.kind.setCurrentText("curve")
    controls.fields["curve_epochs"].setValue(5)
    controls.fields["curve_lr"].setValue(0.05)
    spec = controls.spec()
    assert (spec.curve_epochs, spec.curve_lr, spec.span, spec.name) == (5, 0.05, 1.0, "curve-31-5ep-lr0.05")
    spec.check()
    span = controls.fields["span"]
    assert span.minimum() > 0 and span.maximum() == limits("span")[1]  # the engine refuses span 0
    controls.kind.setCurrentText("plane")
    assert controls.spec().name == "plane-31" and controls.spec().span == LandscapeSpec().span


def test_the_3d_surface_of_a_landscape_filling_in_is_its_finest_complete_subgrid() -> None:
    """The points not computed yet were drawn at the floor between the computed ones (a spiky sheet)."""
    import numpy as np

    from wmstudio.gui.landscape_surface import complete_subgrid

    x, y = np.linspace(-1, 1, 9), np.linspace(-2, 2, 9)
    v = np.full((9, 9), np.nan)
    v[::4, ::4] = 1.0  # the coarse level only
    sx, sy, sv = complete_subgrid(x, y, v)
    assert sv.shape == (3, 3) and np.isfinite(sv).all() and list(sx) == [-1, 0, 1] and list(sy) == [-2, 0, 2]
    v[::2, ::2] = 2.0  # the next level
    assert complete_subgrid(x, y, v)[2].shape == (5, 5)
    v[:] = 3.0
    assert complete_subgrid(x, y, v)[2].shape == (9, 9)  # complete: the whole grid
    v[0, 0] = np.nan  # no complete sub-grid: drawn as it is
    assert complete_subgrid(x, y, v)[2].shape == (9, 9)


def test_the_shown_landscape_exports_for_paraview_from_the_app(qtbot, tmp_path, monkeypatch) -> None:
    """Issue 26.8: the VTK/OBJ export of a landscape was only in the CLI."""
    import numpy as np
    from PySide6.QtWidgets import QFileDialog

    from wmstudio.gui import file_dialogs
    from wmstudio.gui.landscape_view import LandscapeView
    from wmstudio.landscape.spec import METRICS, LandscapeSpec
    from wmstudio.landscape.store import Landscape

    xs, ys = np.linspace(-1.0, 2.0, 4), np.linspace(0.5, 1.5, 3)
    gx, gy = np.meshgrid(xs, ys)
    metrics = {m: (k + 1) * gx + 10 * gy ** 2 for k, m in enumerate(METRICS)}
    ls = Landscape("p", "plane", "finished", LandscapeSpec(kind="plane"), {}, metrics, np.ones_like(gx, bool),
                   {"x": xs, "y": ys}, ["embed"], np.zeros((1, 2)), {})
    view = LandscapeView()
    qtbot.addWidget(view)
    assert file_dialogs.export_mesh(view, view, tmp_path).startswith("Not saved: no landscape is shown")
    view.show_landscape(ls)
    glb = next(f for f in file_dialogs.MESH_FILTERS if f.endswith("(*.glb)"))
    for name, chosen, suffix in (("grid", "VTK structured grid, every metric as point data (*.vts)", ".vts"),
                                 ("mesh.obj", "", ""), ("mesh", glb, ".glb")):
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, n=name, c=chosen: (str(tmp_path / n), c))
        said = file_dialogs.export_mesh(view, view, tmp_path)
        written = tmp_path / (name + suffix)
        assert said.startswith(f"Saved the landscape p to {written}") and written.stat().st_size > 0
        assert ("height is the metric scaled" in said) == (written.suffix in (".obj", ".glb"))  # said where it is
    text = (tmp_path / "grid.vts").read_text()
    assert "StructuredGrid" in text and all(f'Name="{m}"' in text for m in METRICS)
    assert (tmp_path / "mesh.obj").read_text().count("\nv ") == 12  # the 4 x 3 grid's vertices
