"""Issue 25.2: the app shows a run it watched from the run's events alone. After the run ends it used to
read the whole log back (22 opens of the file: series, config, trigger set, landscapes, weights, summary)
and replace what the events had built; now no open of the log happens in the app's process but the
writer's, and every view holds what reading the log gives."""

from __future__ import annotations

import json
import threading

import h5py
import pytest
from gui_helpers import make_window
from PySide6.QtCore import Qt

from wmstudio.gui.log_reading import read_snapshot
from wmstudio.runlog_reader import RunLogReader

RUN_TIMEOUT = 180_000


@pytest.fixture
def reads(monkeypatch):  # noqa: ANN001, ANN201
    """Every read-only open of an HDF5 file in this process: (path, thread name)."""
    opened: list[tuple[str, str]] = []
    real = h5py.File

    def counting(name, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if mode == "r":
            opened.append((str(name), threading.current_thread().name))
        return real(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", counting)
    return opened


def _run(qtbot, win, cancel_in: str = "") -> None:  # noqa: ANN001
    with qtbot.waitSignal(win.log_opened, timeout=RUN_TIMEOUT):  # the ended run, shown in every view
        qtbot.mouseClick(win.run_panel.run_button, Qt.MouseButton.LeftButton)
        if cancel_in:
            qtbot.waitUntil(lambda: any(s.name == cancel_in for s in win.ctl.series.stages)
                            and win.ctl.series.last_step > 60, timeout=RUN_TIMEOUT)
            qtbot.mouseClick(win.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)


def test_a_watched_run_is_shown_from_its_events_without_reading_its_log(qtbot, tmp_path, reads) -> None:  # noqa: ANN001
    win = make_window(qtbot, tmp_path)
    _run(qtbot, win)
    log = win.ctl.log_path
    assert [r for r in reads if r[0] == str(log)] == []  # before the fix: 22 opens after the run ended
    disk = read_snapshot(log)  # what opening the log gives, to compare with
    series = win.ctl.series
    assert series.log_status == disk.series.log_status == "finished"
    assert [(s.name, s.status, s.start_step, s.end_step) for s in series.stages] == \
        [(s.name, s.status, s.start_step, s.end_step) for s in disk.series.stages]
    assert [{k: r[k] for k in ("global_step", "trigger_acc", "test_acc")} for r in series.eval_rows] == \
        [{k: r[k] for k in ("global_step", "trigger_acc", "test_acc")} for r in disk.series.eval_rows]
    compare = win.tabs.compare_view
    assert compare.runs[-1] is series and compare.configs[-1] == disk.config == json.loads(RunLogReader(log).config_json)
    images, labels, scheme, classes = disk.trigger
    grid = win.setup.trigger_grid
    assert "from the run log" in grid.caption.text() and grid.count == min(len(labels), grid.limit) > 0
    assert scheme and classes
    assert win.export_model_action.isEnabled() and win.ctl.stages_with_weights() == disk.stages_with_weights
    assert str(log) in win.state.recent_files()
    assert win.windowTitle().startswith(log.name) and "(" not in win.windowTitle()


def test_a_cancelled_run_lists_its_partial_weights_as_the_log_does(qtbot, tmp_path, reads) -> None:  # noqa: ANN001
    win = make_window(qtbot, tmp_path)
    win.setup.form.set_value("finetune.epochs", 30)
    _run(qtbot, win, cancel_in="finetune")
    log = win.ctl.log_path
    assert [r for r in reads if r[0] == str(log)] == []
    disk = read_snapshot(log)
    assert win.ctl.series.log_status == disk.series.log_status == "cancelled"
    assert win.ctl.watched is None and disk.stages_with_weights == ["embed", "finetune"]
    assert [s.status for s in win.ctl.series.stages] == ["finished", "cancelled"]
    kinds = win.tabs.landscape_view.controls.kind  # the kinds offered follow the stages with weights, as on opening
    offered = [kinds.itemText(i) for i in range(kinds.count()) if kinds.model().item(i).isEnabled()]
    from wmstudio.gui.controller import landscape_kinds

    assert offered == [k for k in (kinds.itemText(i) for i in range(kinds.count()))
                       if not landscape_kinds(disk.stages_with_weights).get(k)]


def test_a_computed_landscape_is_shown_from_its_events_without_reading_it_back(qtbot, tmp_path, demo_copy,  # noqa: ANN001
                                                                               reads) -> None:
    """The landscape's start event carries its axes, models and trajectories, and the job returns it as
    stored: the app's own thread never opens the log for it (the computing worker reads the weights)."""
    from gui_helpers import open_log

    from wmstudio.landscape import LandscapeSpec

    win = make_window(qtbot, tmp_path)
    open_log(qtbot, win, demo_copy)
    reads.clear()
    with qtbot.waitSignal(win.control.changed, timeout=RUN_TIMEOUT, check_params_cb=lambda *a: not win.busy):
        win.control.compute_landscape(LandscapeSpec(kind="plane", name="watched", resolution=5, images=100))
    qtbot.waitUntil(lambda: not win.busy, timeout=RUN_TIMEOUT)
    mine = [r for r in reads if r[0] == str(demo_copy) and r[1] == threading.main_thread().name]
    assert mine == []
    view = win.tabs.landscape_view
    assert view.current_name == "watched" and view.ls.complete and view.ls.model_names
    stored = view.controls.stored
    assert [stored.itemText(i) for i in range(stored.count())] == ["watched"] and stored.currentText() == "watched"
    assert {r[1] for r in reads if r[0] == str(demo_copy)} - {threading.main_thread().name}  # the worker's reads
