"""The 3D landscape view, which needs a real OpenGL context: run under Xvfb (``make test`` does).

Skipped on the offscreen Qt platform, where pyqtgraph's GLViewWidget would crash.
"""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import export_plots, make_window, open_log
from PySide6.QtGui import QImage

from wmstudio.config import load_config
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
    qtbot.wait(200)
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
