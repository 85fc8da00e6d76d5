"""Issue 24, items 1, 7, 8, 9, 11 and 12 (the app's side): tests that failed before their fixes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("stop", [SystemExit, SystemExit(4), KeyboardInterrupt])
def test_a_job_that_raises_a_base_exception_ends_as_failed(qtbot, stop) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QWidget

    from wmstudio.gui.jobs import JobRunner

    def job(_callback, _control):  # noqa: ANN001, ANN202
        raise stop

    owner = QWidget()
    qtbot.addWidget(owner)
    from PySide6.QtCore import QCoreApplication

    runner = JobRunner(owner)
    failures = []
    runner.failed.connect(lambda *args: failures.append(args))
    with qtbot.waitSignal(runner.failed, timeout=10_000) as got:
        runner.start("run", job)
        thread = runner.thread
    kind, message, _details, user_error = got.args
    assert kind == "run" and not runner.running and not user_error
    assert ("sys.exit(" in message) if stop is not KeyboardInterrupt else "KeyboardInterrupt" in message
    qtbot.waitUntil(thread.isFinished)
    QCoreApplication.sendPostedEvents()  # the ended thread's own signal comes after failed: it says nothing more
    QCoreApplication.processEvents()
    assert not runner.running and len(failures) == 1


TINY = {"embed": {"epochs": 1}, "finetune": {"epochs": 1}, "restore": {"epochs": 1}}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """embed and fine-tune, one epoch each, of the small digits experiment (shared by this file's tests)."""
    from conftest import quick_config

    from wmstudio.config_io import load_config
    from wmstudio.pipeline import run_experiment

    out = tmp_path_factory.mktemp("tiny") / "both.h5"
    run_experiment(load_config(data=quick_config(**TINY)), out, stages=("embed", "finetune"))
    return out


def test_the_drift_title_names_the_reference_each_stage_recorded(qtbot, tmp_path, tiny_run) -> None:  # noqa: ANN001
    """Item 8: a stage run alone measures drift from its own start, and the title says so (not "the
    watermarked model"); the stages of one run keep their references."""
    from conftest import quick_config

    from wmstudio.config_io import load_config
    from wmstudio.gui.drift_view import DriftView
    from wmstudio.gui.series import RunSeries
    from wmstudio.pipeline import run_experiment
    from wmstudio.runlog_reader import RunLogReader

    both = tiny_run
    alone = tmp_path / "restore_alone.h5"
    run_experiment(load_config(data=quick_config(**TINY, model={"checkpoint": f"{both}:finetune"})), alone,
                   stages=("restore",))
    assert [s.drift_reference for s in RunLogReader(alone).stages()] == ["restore_start"]
    assert {s.name: s.drift_reference for s in RunLogReader(both).stages()} == {
        "embed": "initial", "finetune": "watermarked"}
    view = DriftView()
    qtbot.addWidget(view)
    view.show_log(RunSeries.from_log(alone))
    assert view.l2.titleLabel.text == "Weight drift from its own start"
    view.clear()
    assert "the watermarked model" not in view.l2.titleLabel.text
    view.show_log(RunSeries.from_log(both))
    assert view.l2.titleLabel.text == ("Weight drift from: embed: the run's initial weights; "
                                       "fine-tune (attack): the watermarked model")


def test_a_followed_log_shows_finished_once_its_writer_ends(qtbot, tmp_path) -> None:  # noqa: ANN001
    """Item 12: the run bar follows a log another process writes, and says so when the writer ends."""
    from gui_helpers import make_window

    from wmstudio.gui.series import LogRows, RunSeries, StageSpan

    win = make_window(qtbot, tmp_path)
    path = str(tmp_path / "other.h5")
    series = RunSeries(label="other", log_path=path, log_status="running", stages=[StageSpan("embed", 0, 10)])
    assert win.ctl.adopt(series) and win.ctl.following
    win.run_panel.show_log(series, "other.h5")
    assert win.run_panel.progress_label.text() == "following: other.h5 (running, embed)"
    assert win.run_panel.progress.maximum() == 0  # busy, not a bar stuck at 0%
    win._log_grew(LogRows(path, "other", "cpu", "finished", []))
    assert not win.ctl.following
    assert win.run_panel.progress_label.text() == "opened: other.h5 (finished)"
    assert win.run_panel.progress.value() == win.run_panel.progress.maximum() == 1


def _landscape_view(qtbot):  # noqa: ANN001, ANN202
    from wmstudio.gui.landscape_view import LandscapeView

    view = LandscapeView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_a_filling_landscape_leaves_missing_cells_transparent_and_says_when_it_stopped(qtbot) -> None:  # noqa: ANN001
    """Item 11: cells not computed are drawn as missing (no copied colours); after Stop the title (which
    exports carry) says stopped and how many points it holds."""
    from gui_helpers import fake_landscape

    from wmstudio.events import LandscapeFinished

    view = _landscape_view(qtbot)
    ls = fake_landscape("plane", n=9, status="running", done=False)
    ls.done[:3] = True  # the first three rows
    view.set_computing(True)
    view.show_landscape(ls)
    view.image.render()  # the picture Qt paints (built at the first paint otherwise)
    img = view.image.qimage
    assert img.pixelColor(4, 1).alpha() == 255 and img.pixelColor(4, 6).alpha() == 0  # (x, row)
    assert view.map.titleLabel.text.endswith("(filling in)")
    view.apply_events([LandscapeFinished(ls.name, "cancelled", 1.0)])
    view.set_computing(False)
    assert view.map.titleLabel.text.endswith("(stopped: 27/81 points)")
    ls.status = "running"  # opened from a log whose computation never ended (no job of this app computes it)
    view.redraw()
    assert view.map.titleLabel.text.endswith("(partial: 27/81 points)")
    # stopped before its first point: not "(starting)" for ever
    ls = fake_landscape("plane", name="early", n=9, status="running", done=False)
    view.set_computing(True)
    view.show_landscape(ls)
    assert view.map.titleLabel.text.endswith("(starting)")
    view.apply_events([LandscapeFinished(ls.name, "cancelled", 1.0)])
    view.set_computing(False)
    assert view.map.titleLabel.text.endswith("(stopped: 0/81 points)")


def test_a_1d_path_or_no_landscape_clears_the_maps_axes_and_colour_bar(qtbot) -> None:  # noqa: ANN001
    from gui_helpers import fake_landscape

    view = _landscape_view(qtbot)
    pca = fake_landscape("pca", n=9)
    pca.attrs.update({"explained_variance": [0.7, 0.2]})
    for after in (lambda: view.show_landscape(fake_landscape("line", n=8)), view.clear):
        view.show_landscape(pca)
        assert view.map.getAxis("bottom").labelText.endswith("PC 1 (70.0% of variance)") and view.colorbar.isVisible()
        after()
        for side in ("bottom", "left"):
            assert not view.map.getAxis(side).labelText and not view.map.getAxis(side).label.isVisible()
        assert not view.colorbar.isVisible()


@pytest.mark.parametrize(("text", "said"), [
    ("abc", "expected WIDTHxHEIGHT such as 1600x1200"), ("0x0", "0x0 is out of bounds"),
    ("20000x20000", "20000x20000 is out of bounds"), ("63x500", "is out of bounds")])
def test_the_3d_export_size_is_checked_with_its_bounds_and_their_reason(text: str, said: str) -> None:
    from wmstudio.errors import ConfigError
    from wmstudio.gui.label_layout import export_size

    with pytest.raises(ConfigError) as got:
        export_size(text)
    message = str(got.value)
    assert message.startswith("3D export size: ") and said in message
    assert "from 64 (room for the labels) to 8192 pixels (a larger picture takes gigabytes of memory" in message
    assert export_size(" 1600 x 1200 ") == (1600, 1200) and export_size("64x8192") == (64, 8192)


def test_export_3d_asks_again_saying_why_instead_of_a_traceback(qtbot, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

    from wmstudio.gui import file_dialogs

    answers = iter([("abc", True), ("0x0", True), ("800x600", True)])
    prompts: list[str] = []

    def get_text(_parent, _title, prompt, text=""):  # noqa: ANN001, ANN202
        prompts.append(prompt)
        return next(answers)

    class View:
        def export_3d(self, path, size, overwrite=False, style=None):  # noqa: ANN001, ANN202
            self.asked, self.style = (path, size, overwrite), style
            return True

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    offered: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda _p, _t, start, *_a, **_k: (offered.append(start), ("/tmp/x.png", ""))[1]))
    parent, view = QWidget(), View()
    qtbot.addWidget(parent)
    from wmstudio.figures.style import ExportStyle

    said = file_dialogs.export_3d(parent, view, ExportStyle(font_size=12.0), tmp_path / "runs")
    assert offered == [str(tmp_path / "runs" / "landscape_3d.png")]  # in the runs folder, not the process's cwd
    assert said == "Saved the 3D view (800x600 pixels) to /tmp/x.png" and view.asked == ("/tmp/x.png", (800, 600), True)
    assert view.style == ExportStyle(font_size=12.0)  # drawn in the export style
    assert "expected WIDTHxHEIGHT" in prompts[1] and "0x0 is out of bounds" in prompts[2]


def test_placed_labels_never_overlap_and_titles_move_rather_than_vanish() -> None:
    from PySide6.QtCore import QRectF

    from wmstudio.gui.label_layout import place_labels

    bounds = QRectF(0, 0, 400, 300)
    asked = [(2, QRectF(100, 100, 40, 12)), (2, QRectF(110, 104, 40, 12)),  # two tick values on one another
             (0, QRectF(105, 102, 120, 12)),  # an axis title over both
             (1, QRectF(380, 295, 60, 12))]  # a model name partly outside the picture
    placed = place_labels(asked, bounds, 12.0)
    assert placed[2] == QRectF(105, 102, 120, 12)  # the title keeps its place
    assert placed[0] is None and placed[1] is None  # the ticks under it are left out
    assert placed[3] is not None and bounds.contains(placed[3])
    kept = [r for r in placed if r is not None]
    assert not any(a.intersects(b) for i, a in enumerate(kept) for b in kept[i + 1:])


@pytest.mark.gl
def test_a_3d_export_has_the_landscapes_title_and_no_labels_on_one_another(qtbot, tmp_path) -> None:  # noqa: ANN001
    """Item 7: under Xvfb (skipped where there is no OpenGL). Small pictures crowd the labels most."""
    from gui_helpers import image_array, pca_surface_view
    from PySide6.QtGui import QImage

    from wmstudio.errors import ConfigError
    from wmstudio.gui.gl import opengl_status

    ok, reason = opengl_status()
    if not ok:
        pytest.skip(f"no OpenGL here ({reason}); run under Xvfb: xvfb-run -a pytest -m gl")
    lv, ls = pca_surface_view(qtbot)
    for size in ((400, 300), (1600, 1200)):
        out = tmp_path / f"surface_{size[0]}.png"
        assert lv.export_3d(str(out), size)
        rects = lv.export_label_rects
        assert len(rects) > 10  # the title, axis titles, model names and most tick values
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), size
        title = rects[0]
        assert title.top() >= 0 and title.bottom() < 0.12 * size[1] and lv.title_text.startswith("trigger-set loss — pca")
        pixels = image_array(QImage(str(out)))[: int(title.bottom()) + 1]
        assert (np.abs(pixels[..., :3].astype(int) - [38, 38, 38]).sum(-1) < 90).sum() > 30  # the title's ink
    with pytest.raises(ConfigError, match="0x0 is out of bounds"):
        lv.export_3d(str(tmp_path / "none.png"), (0, 0))


def test_a_tiny_p_value_change_is_drawn_on_labelled_decades_not_as_a_full_height_drop(qtbot) -> None:  # noqa: ANN001
    """Item 9: p 1.0 -> 0.9997 (after Neural Cleanse) on an axis zoomed to 10^-0.0001: no ticks, a cliff."""
    from PySide6.QtWidgets import QApplication

    from wmstudio.events import Metrics, RunStarted, StageStarted
    from wmstudio.gui.metrics_view import MetricsView
    from wmstudio.gui.series import RunSeries

    view = MetricsView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    series = RunSeries()
    for e in (RunStarted("x.h5", "cpu", ("attack",)), StageStarted("attack", 1, 10, 0),
              Metrics("attack", 0.0, 0, {"p_value": 1.0, "test_acc": 0.9}),
              Metrics("attack", 1.0, 10, {"p_value": 0.9997, "test_acc": 0.9})):
        series.apply(e)
    view.show_log(series)
    QApplication.processEvents()
    lo, hi = view.pval.vb.viewRange()[1]
    assert hi - lo >= 1.99 and lo <= -1.0 and hi >= 0.0  # log10 units: at least 10^-1 .. 1
    axis = view.pval.getAxis("left")
    ticks = [v for _step, values in axis.tickValues(lo, hi, axis.height()) for v in values]
    assert len(ticks) >= 2 and axis.tickStrings(ticks, 1.0, 1.0)[-2:] == ["10⁻¹", "1"]


def test_neural_cleanse_reports_its_progress_and_the_class_it_flagged() -> None:
    """Item 9: no "step 0/0 --:--" while it reverses the triggers (Phase events, worded by the progress
    tracker), and the flagged class in the app's messages (a Note) and in ``inspect`` (attack_findings)."""
    from types import SimpleNamespace

    import torch

    from wmstudio.attacks.neural_cleanse import reverse_all
    from wmstudio.control import RunControl
    from wmstudio.data.batches import Normalizer
    from wmstudio.events import Phase, RunStarted
    from wmstudio.inspect_log import attack_findings
    from wmstudio.progress import ProgressTracker

    events: list = []
    torch.manual_seed(0)
    s = SimpleNamespace(cfg=SimpleNamespace(attack=SimpleNamespace(nc_steps=25, nc_lr=0.1, nc_lambda=5.0),
                                            run=SimpleNamespace(seed=1)),
                        model=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), device="cpu",
                        num_classes=3, control=RunControl(), normalizer=Normalizer((0.5,), (0.5,)),
                        memory_format=torch.contiguous_format, emit=events.append)
    triggers = reverse_all(s, torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8))
    assert len(triggers) == 3
    phases = [e for e in events if isinstance(e, Phase)]
    assert [p.done for p in phases] == [0, 10, 20, 25, 35, 45, 50, 60, 70, 75] and {p.total for p in phases} == {75}
    tracker = ProgressTracker()
    tracker.update(RunStarted("x.h5", "cpu", ("attack",)))
    lines = [tracker.update(e) for e in phases[:2]]
    assert lines == ["[attack] reversing each class's trigger: 75 steps", None]
    assert tracker.status_line().startswith("removal attack · reversing each class's trigger · step 10/75 · ")
    assert "--:--" not in tracker.status_line()

    class Log:
        def stage_json(self, stage: str, key: str) -> dict:
            assert (stage, key) == ("attack", "attack_json")
            return {"kind": "neural_cleanse", "flagged_class": 2, "anomaly_index": [0.1, -0.4, 3.2],
                    "reversed_success": [0.2, 0.1, 0.97]}

    assert attack_findings(Log()) == ["Neural Cleanse flagged class 2 (anomaly index 3.20 > 2: detected; its "
                                      "reversed trigger sends 97% of clean images to it); unlearning its trigger"]


def test_export_all_plots_writes_the_3d_view_as_wide_as_the_other_figures(tmp_path) -> None:  # noqa: ANN001
    """The 3D PNG of File > Export all plots: the export style's width at its resolution (as the 2D figures),
    in the style (it was always 1600x1200, whatever the width and resolution set)."""
    from wmstudio.figures.style import ExportStyle
    from wmstudio.gui.file_dialogs import write_plots

    class View:
        has_3d = True

        def export_3d(self, path, size=(1600, 1200), labels=True, overwrite=False, style=None):  # noqa: ANN001, ANN202
            self.asked = (size, style)
            return True

    view, style = View(), ExportStyle(width_in=3.3, dpi=300)
    assert write_plots({}, view, tmp_path, style=style) == [tmp_path / "landscape_3d.png"]
    assert view.asked == ((990, 742), style)
