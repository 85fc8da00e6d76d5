"""The checkpoint panel: fit shown on choosing a checkpoint, Evaluate on a background thread (offscreen Qt)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt, QTimer

from tests.conftest import quick_config
from wmstudio.config_io import load_config
from wmstudio.gui.checkpoint_panel import CheckpointPanel
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment
from wmstudio.runlog_reader import RunLogReader

WAIT_MS = 120_000


def _cfg(checkpoint: str = "", **model: object):  # noqa: ANN202
    return load_config(data=quick_config(model={"options": {"width": 8}, "checkpoint": checkpoint, **model},
                                         trigger={"scheme": "content", "size": 20}, embed={"epochs": 1},
                                         finetune={"enabled": False}, restore={"enabled": False}))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt_panel") / "tiny.h5"
    run_experiment(_cfg(), out)
    return out


def _panel(qtbot) -> CheckpointPanel:  # noqa: ANN001
    panel = CheckpointPanel()
    qtbot.addWidget(panel)
    return panel


def test_a_fitting_checkpoint_evaluates_to_the_runs_own_accuracies(qtbot, tiny_run: Path) -> None:
    panel = _panel(qtbot)
    with qtbot.waitSignal(panel.checked, timeout=WAIT_MS) as blocker:
        panel.set_config(_cfg(f"{tiny_run}:embed"))
    assert blocker.args[0].fits and panel.evaluate_button.isEnabled()
    assert "fits small_cnn" in panel.status.text() and not panel.details.isVisible()
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(0)
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(panel.evaluate_button, Qt.MouseButton.LeftButton)
        assert not panel.evaluate_button.isEnabled() and "Evaluating" in panel.eval_label.text()
    timer.stop()
    assert ticks  # the GUI thread kept handling events while the evaluation ran
    result = blocker.args[0]
    embed = RunLogReader(tiny_run).stage("embed")
    assert result.test_acc == pytest.approx(embed.final("test_acc"))
    assert result.trigger_acc == pytest.approx(embed.final("trigger_acc"))
    assert result.test_loss == pytest.approx(embed.final("test_loss"), rel=1e-4)
    assert "test acc" in panel.eval_label.text() and panel.evaluate_button.isEnabled()


def test_a_checkpoint_that_does_not_fit_says_why(qtbot, tmp_path: Path) -> None:
    wide = tmp_path / "wide.pt"
    torch.save(build_model("small_cnn", 1, 10, 8, {"width": 16}).state_dict(), wide)
    panel = _panel(qtbot)
    with qtbot.waitSignal(panel.checked, timeout=WAIT_MS) as blocker:
        panel.set_config(_cfg(str(wide)))
    result = blocker.args[0]
    assert not result.fits and "features.0.weight" in result.details
    assert "does not fit small_cnn" in panel.status.text() and "features.0.weight" in panel.details.toPlainText()
    assert not panel.evaluate_button.isEnabled()
    # the latest settings win: a burst of changes ends with the check of the last one
    with qtbot.waitSignal(panel.checked, timeout=WAIT_MS) as blocker:
        panel.set_config(_cfg(str(wide), options={"width": 12}))
        panel.set_config(_cfg(str(wide), options={"width": 16}))
    assert blocker.args[0].fits and panel.result is blocker.args[0]
    panel.set_config(None)
    assert "not valid" in panel.status.text() and not panel.evaluate_button.isEnabled()


def test_choosing_a_checkpoint_in_the_main_window_shows_the_fit(qtbot, tmp_path: Path) -> None:
    from gui_helpers import make_window

    missing = tmp_path / "nope.pt"
    win = make_window(qtbot, tmp_path)
    panel = win.setup.checkpoint_panel
    with qtbot.waitSignal(panel.checked, timeout=WAIT_MS) as blocker:
        win.setup.form.widget("model.checkpoint").setText(str(missing))
    assert not blocker.args[0].fits and "no such checkpoint file" in panel.details.toPlainText()
    win.setup.form.widget("model.checkpoint").setText("")
    qtbot.waitUntil(lambda: "No checkpoint chosen" in panel.status.text(), timeout=WAIT_MS)
