"""The settings form says what is wrong, whole and with its reason, and never changes a value silently
(issue 24.13, 24.14): bounds with their reasons, a typed minus sign kept and flagged, a checkpoint that
is missing or not a checkpoint named as such, flagged at its field and refused by Run; a model file
disables the architecture box, and the model options are shown and kept."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from PySide6.QtGui import QTextDocument

from wmstudio.config import ExperimentConfig
from wmstudio.config_io import load_config
from wmstudio.resources import example_config

WAIT_MS = 120_000


def _plain(rich: str) -> str:
    doc = QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


def _bounded_fields(cls: type, prefix: str = "") -> list[tuple[str, dict]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _bounded_fields(hints[f.name], f"{prefix}{f.name}.")
        elif f.metadata.get("max") is not None:
            out.append((prefix + f.name, dict(f.metadata)))
    return out


def test_every_upper_bound_gives_its_reason() -> None:
    fields = _bounded_fields(ExperimentConfig)
    assert len(fields) > 30
    assert [name for name, meta in fields if not meta.get("why")] == []


def test_the_message_under_the_form_is_whole_with_the_bounds_reason(qtbot) -> None:
    from wmstudio.gui.setup_panel import SetupPanel

    panel = SetupPanel()
    qtbot.addWidget(panel)
    panel.form.set_value("data.attacker_fraction", 1.5)
    panel.form.revalidate()
    shown = _plain(panel.validation_label.text())
    assert ("data.attacker_fraction: expected a number <= 0.95 (the owner keeps at least 5% of the training split "
            "to train on), got 1.5") in shown  # not cut at "<", and the reason is there
    tip = _plain(panel.form.widget("data.attacker_fraction").toolTip())
    assert "<= 0.95" in tip
    panel.form.set_value("data.attacker_fraction", 0.3)
    panel.form.revalidate()
    assert panel.form.error is None and "allowed: >= 0 and <= 0.95" in _plain(
        panel.form.widget("data.attacker_fraction").toolTip())  # the field's own tooltip is back, with its bounds


def test_a_typed_minus_sign_is_kept_and_flagged_not_dropped(qtbot) -> None:
    from wmstudio.gui.config_form import INVALID_STYLE, ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    box = form.widget("data.owner_size")  # min 0
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "-5")
    assert box.value() == -5  # the spin box used to drop the "-" and keep 5
    assert form.error is not None and form.error.field == "data.owner_size"
    assert "expected a number >= 0, got -5" in str(form.error) and box.styleSheet() == INVALID_STYLE
    box.setValue(0)
    box.stepBy(-1)  # the arrows stay within the bounds
    assert box.value() == 0 and form.error is None
    batch = form.widget("run.eval_batch_size")  # max 65536, its reason in the message
    batch.setValue(70000)
    assert batch.value() == 70000 and "<= 65536 (a batch is held on the device at once" in str(form.error)


def test_a_missing_or_non_checkpoint_file_is_named_flagged_and_refused_by_run(qtbot, tmp_path: Path) -> None:
    from gui_helpers import make_window

    from wmstudio.gui.config_form import INVALID_STYLE

    win = make_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: win.engine, timeout=WAIT_MS)
    form, panel = win.setup.form, win.setup.checkpoint_panel
    text = tmp_path / "notes.pt"
    text.write_text("hello, these are notes, not weights\n")
    for path, said in ((tmp_path / "absent.pt", "file not found"), (text, "not a checkpoint: expected")):
        with qtbot.waitSignal(panel.checked, timeout=WAIT_MS) as blocker:
            form.widget("model.checkpoint").setText(str(path))
        result = blocker.args[0]
        assert not result.fits and result.field == "model.checkpoint"
        status = _plain(panel.status.text())
        assert said in status and "does not fit" not in status and "KeyError" not in panel.details.toPlainText()
        assert form.error is not None and form.error.field == "model.checkpoint" and said in str(form.error)
        assert form.widget("model.checkpoint").styleSheet() == INVALID_STYLE
        assert not win.run_panel.run_button.isEnabled() and win.start_run() is None  # Run refuses
    assert "begins with the text 'hello, these are notes" in panel.details.toPlainText()
    form.widget("model.checkpoint").setText("")
    qtbot.waitUntil(lambda: form.error is None, timeout=WAIT_MS)
    assert win.run_panel.run_button.isEnabled() and form.widget("model.checkpoint").styleSheet() == ""


def test_a_model_file_disables_the_architecture_box_and_the_options_are_shown_and_kept(qtbot, tmp_path: Path) -> None:
    from wmstudio.gui.setup_panel import SetupPanel

    panel = SetupPanel()
    qtbot.addWidget(panel)
    form = panel.form
    demo = load_config(example_config("demo"))
    assert demo.model.options == {"width": 16}
    form.set_config(demo)
    form.set_model_choices(["small_cnn", "resnet20"])  # as when the engine has loaded
    assert form.widget("model.options").text() == "{ width = 16 }" and form.config().model.options == {"width": 16}
    assert form.labels["model.options"].text() == "model options" and form.widget("model.arch").isEnabled()
    form.widget("model.file").setText(str(tmp_path / "net.py"))
    form.widget("model.factory").setText("make")
    arch = form.widget("model.arch")
    assert not arch.isEnabled() and "the model file builds the model" in form.labels["model.arch"].text()
    assert "net.py" in arch.toolTip() and form.labels["model.options"].text() == "options for the model file's factory"
    assert form.config().model.options == {"width": 16}  # still passed on (to the factory)
    form.widget("model.file").setText("")
    assert arch.isEnabled() and form.labels["model.arch"].text() == "architecture"
    # a log's recorded settings keep their options too
    assert panel.load_log_settings(tmp_path / "demo.h5", demo.to_dict())
    assert form.config().model.options == {"width": 16} and form.widget("model.options").text() == "{ width = 16 }"


def test_the_engine_names_a_text_file_as_no_checkpoint(tmp_path: Path) -> None:
    from wmstudio.errors import CheckpointError
    from wmstudio.models.checkpoint import read_checkpoint

    fake = tmp_path / "model.pt"
    fake.write_text("not weights")
    with pytest.raises(CheckpointError, match=r"model.pt: not a checkpoint: expected a state_dict saved by torch.save"):
        read_checkpoint(fake)


def test_the_mouse_wheel_scrolls_the_form_instead_of_changing_an_unfocused_field(qtbot) -> None:  # noqa: ANN001
    """Scrolling the settings with the wheel over a choice or number box changed it (the data set went from
    digits to svhn in a real session); it changes only once the box has focus."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from wmstudio.gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)

    def wheel(w) -> None:  # noqa: ANN001 - one notch down, as the pointer over the box gives it
        event = QWheelEvent(QPointF(5, 5), QPointF(w.mapToGlobal(QPoint(5, 5))), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(w, event)

    data_set, epochs = form.widget("data.dataset"), form.widget("embed.epochs")
    before = (data_set.currentText(), epochs.value())
    for w in (data_set, epochs):
        wheel(w)
    assert (data_set.currentText(), epochs.value()) == before
    assert all(w.focusPolicy() != Qt.FocusPolicy.WheelFocus for w in (data_set, epochs))  # nor takes focus
    data_set.setFocus()
    qtbot.waitUntil(data_set.hasFocus)
    wheel(data_set)
    assert data_set.currentText() != before[0]  # a focused box still takes the wheel


def test_every_form_label_is_written_for_people_not_a_raw_field_name(qtbot) -> None:  # noqa: ANN001
    """Issue 24: curvature_top_k, curvature_probes and curvature_images were shown as their snake_case names."""
    from wmstudio.gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    raw = {path: label.text() for path, label in form.labels.items() if "_" in label.text()}
    assert not raw, raw
    assert form.labels["run.curvature_top_k"].text() == "curvature: top eigenvalues"


def test_the_labels_row_says_what_auto_means_for_the_scheme(qtbot) -> None:
    """A log records the mode "auto" resolved to ("target" for content) while the form showed only "auto"."""
    from wmstudio.catalog import AUTO_LABEL_MODE
    from wmstudio.gui.config_form import ConfigForm
    from wmstudio.triggers.abstract import build
    from wmstudio.triggers.base import BuildContext

    form = ConfigForm()
    qtbot.addWidget(form)
    label = form.labels["trigger.label_mode"]
    for scheme, text in (("abstract", "labels (auto: random)"), ("content", "labels (auto: target)"),
                         ("adversarial", "labels (auto: random_other)"), ("folder", "labels (auto: the folder's own)")):
        form.set_value("trigger.scheme", scheme)
        assert label.text() == text
    form.set_value("trigger.label_mode", "random_wrong")
    assert label.text() == "labels"
    ctx = BuildContext((3, 8, 8), 10)  # the scheme builds with the mode the form says
    assert build(ctx, 4, 0, label_mode="auto").params["label_mode"] == AUTO_LABEL_MODE["abstract"]
