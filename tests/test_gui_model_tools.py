"""The app's Model menu dialogs: Export model and Verify ownership, run off the GUI thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt, QTimer

from tests.conftest import quick_config
from wmstudio.config_io import load_config
from wmstudio.gui.model_tools import ExportModelDialog, VerifyDialog
from wmstudio.models import build_model
from wmstudio.models.checkpoint import read_checkpoint
from wmstudio.runlog_reader import RunLogReader

WAIT_MS = 120_000


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wmstudio.pipeline import run_experiment

    out = tmp_path_factory.mktemp("model_tools") / "tiny.h5"
    cfg = load_config(data=quick_config(model={"options": {"width": 8}}, trigger={"scheme": "content", "size": 20},
                                        embed={"epochs": 3}, finetune={"enabled": False},
                                        restore={"enabled": False}))
    run_experiment(cfg, out)
    return out


def _ticking() -> tuple[QTimer, list[int]]:
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(0)
    return timer, ticks


def test_export_writes_the_stage_model_and_says_where(qtbot, tiny_run: Path, tmp_path: Path) -> None:
    box = ExportModelDialog(tiny_run, ["embed"])
    qtbot.addWidget(box)
    assert box.stage.currentText() == "embed" and box.out.text().endswith(".safetensors")
    out = tmp_path / "wm.safetensors"
    box.out.setText(str(out))
    timer, ticks = _ticking()
    with qtbot.waitSignal(box.exported, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(box.action_button, Qt.MouseButton.LeftButton)
        assert not box.action_button.isEnabled()  # the export runs on a worker
    timer.stop()
    assert ticks and blocker.args[0] == out and out.exists()
    assert str(out) in box.result.text() and "embed" in box.result.text()
    ckpt = read_checkpoint(str(out))
    assert set(ckpt.tensors) == set(RunLogReader(tiny_run).weights("embed"))


def test_export_refuses_a_bad_suffix_in_words(qtbot, tiny_run: Path, tmp_path: Path) -> None:
    box = ExportModelDialog(tiny_run, ["embed"])
    qtbot.addWidget(box)
    box.out.setText(str(tmp_path / "model.zip"))
    qtbot.mouseClick(box.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: box.action_button.isEnabled(), timeout=WAIT_MS)
    assert "⚠" in box.result.text() and "suffix" in box.result.text() and "Traceback" not in box.result.text()


def test_a_log_without_weights_offers_nothing_to_export(qtbot, tiny_run: Path) -> None:
    box = ExportModelDialog(tiny_run, [])
    qtbot.addWidget(box)
    assert not box.action_button.isEnabled() and "no saved model weights" in box.result.text()


def test_verify_decides_on_the_watermarked_model(qtbot, tiny_run: Path, tmp_path: Path) -> None:
    from wmstudio.export_model import export_model

    model = tmp_path / "suspect.pt"
    export_model(f"{tiny_run}:embed", model)
    box = VerifyDialog(tiny_run)
    qtbot.addWidget(box)
    assert box.trigger.text() == str(tiny_run)  # the shown log's trigger set by default
    box.model.setText(str(model))
    with qtbot.waitSignal(box.verified, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(box.action_button, Qt.MouseButton.LeftButton)
        assert not box.action_button.isEnabled()  # the check runs on a worker
    v = blocker.args[0]
    assert v.n == 20 and 0 <= v.p_value <= 1
    embed = RunLogReader(tiny_run).stage("embed")
    assert v.trigger_acc == pytest.approx(embed.final("trigger_acc"))
    # the headline says what the details' decision says (this 3-epoch model may be collapsed: cannot be verified)
    headline = {"WATERMARK PRESENT": "Watermark present", "not shown": "Not shown",
                "CANNOT BE VERIFIED": "Cannot be verified"}[v.headline()]
    assert headline in box.result.text() and not box.details.isHidden() and "decision" in box.details.toPlainText()
    assert ("p-value" in box.result.text()) != bool(v.unverifiable)


def test_verify_of_a_missing_file_is_one_worded_line(qtbot, tiny_run: Path, tmp_path: Path) -> None:
    box = VerifyDialog(tiny_run)
    qtbot.addWidget(box)
    box.model.setText(str(tmp_path / "nothing.pt"))
    qtbot.mouseClick(box.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: box.action_button.isEnabled(), timeout=WAIT_MS)
    assert "⚠" in box.result.text() and "nothing.pt" in box.result.text()


def test_verify_with_null_models_shows_their_distribution_and_the_suspect_on_it(qtbot, tiny_run: Path,
                                                                                tmp_path: Path) -> None:
    from wmstudio.cli import main
    from wmstudio.export_model import export_model

    model = tmp_path / "suspect.pt"
    export_model(f"{tiny_run}:embed", model)
    nulls = [build_model("small_cnn", 1, 10, 8, {"width": 8}) for _ in range(3)]  # untrained: no watermark
    paths = []
    for k, m in enumerate(nulls):
        paths.append(str(tmp_path / f"null{k}.pt"))
        torch.save(m.state_dict(), paths[-1])
    null = tmp_path / "nulls.h5"
    assert main(["null-models", "--checkpoints", *paths, "--trigger", str(tiny_run), "--out", str(null)]) == 0
    box = VerifyDialog(tiny_run)
    qtbot.addWidget(box)
    box.model.setText(str(model))
    box.null.setText(str(null))
    with qtbot.waitSignal(box.verified, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(box.action_button, Qt.MouseButton.LeftButton)
    v = blocker.args[0]
    assert v.null_accs is not None and len(v.null_accs) == 3
    assert not box.histogram.isHidden() and int(box.histogram.counts.sum()) == 3
    assert box.histogram.suspect_line is not None and box.histogram.suspect_line.value() == pytest.approx(v.trigger_acc)
    assert "3 null models" in box.histogram.caption.text()
    box.model.setText(str(tmp_path / "missing.pt"))  # a failed verification: the last model's histogram goes
    qtbot.mouseClick(box.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: box.action_button.isEnabled(), timeout=WAIT_MS)
    assert box.histogram.isHidden() and "missing.pt" in box.result.text()


def test_a_long_result_never_grows_the_dialog_past_the_screen(qtbot, tiny_run: Path) -> None:
    """With null models the Verify dialog had grown past the bottom of the screen; the details scroll."""
    from PySide6.QtGui import QGuiApplication

    box = VerifyDialog(tiny_run)
    qtbot.addWidget(box)
    box.show()
    box.histogram.setVisible(True)
    box.details.setPlainText("\n".join(f"line {i}" for i in range(400)))
    box.details.setVisible(True)
    box.fit()
    room = (box.screen() or QGuiApplication.primaryScreen()).availableGeometry()
    assert box.height() <= room.height()
