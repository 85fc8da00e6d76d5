"""The app's --trust: computing the landscape of a log whose config names a Python model file asks first."""

from __future__ import annotations

import json

import h5py
from PySide6.QtWidgets import QMessageBox, QWidget

from wmstudio import h5safe
from wmstudio.gui.job_control import confirm_model_file, named_model_file


def _naming(log, file: str) -> None:
    with h5py.File(log, "a") as f:
        cfg = json.loads(f.attrs["config_json"])
        cfg["model"]["file"] = file
        h5safe.set_attrs(f, {"config_json": json.dumps(cfg)})


def test_the_app_asks_before_importing_a_model_file_a_log_names(qtbot, demo_copy, tmp_path, monkeypatch) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    asked: list[str] = []

    def answer(reply):  # noqa: ANN001, ANN202
        def question(_parent, _title, text, *_a):  # noqa: ANN001, ANN202
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert named_model_file(demo_copy) == "" and confirm_model_file(parent, demo_copy) is False and not asked
    _naming(demo_copy, str(tmp_path / "evil.py"))
    assert named_model_file(demo_copy) == str(tmp_path / "evil.py")
    assert confirm_model_file(parent, demo_copy) is True and "evil.py" in asked[-1]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert confirm_model_file(parent, demo_copy) is None  # declined: nothing is computed


def test_a_bound_in_a_validation_message_is_shown_whole(qtbot) -> None:
    """Issue 24.13: the field's tooltip is rich text; a "<= 0.95" in the message must not be cut as a tag."""
    from PySide6.QtGui import QTextDocument

    from wmstudio.gui.config_form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    form.set_value("data.attacker_fraction", 1.5)
    form.revalidate()
    assert form.error is not None and form.error.field == "data.attacker_fraction"
    doc = QTextDocument()
    doc.setHtml(form.widget("data.attacker_fraction").toolTip())
    assert ("expected a number <= 0.95 (the owner keeps at least 5% of the training split to train on), got 1.5"
            in doc.toPlainText())  # whole, with the bound's reason


def test_an_opened_log_brings_its_settings_but_not_its_model_file(qtbot, demo_copy, tmp_path) -> None:
    """Issue 24.3: the form and the shown log are one experiment; issue 22: a model file the log names is
    not taken into the form (the checkpoint check would import it)."""
    from gui_helpers import make_window

    with h5py.File(demo_copy, "a") as f:
        cfg = json.loads(f.attrs["config_json"])
        cfg["embed"]["lr"] = 0.0123
        cfg["model"]["file"], cfg["model"]["factory"] = str(tmp_path / "evil.py"), "make"
        h5safe.set_attrs(f, {"config_json": json.dumps(cfg)})
    win = make_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    assert win.setup.form.config().embed.lr != 0.0123
    with qtbot.waitSignal(win.log_opened, timeout=60_000):
        win.open_log(demo_copy)
    form = win.setup.form.config()
    assert form.embed.lr == 0.0123 and form.model.file == ""
    text = win.tabs.messages.toPlainText()
    assert "evil.py" in text and "not taken over" in text
