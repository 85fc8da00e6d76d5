"""The experiment column: the settings form, the checkpoint check, the trigger-set preview, and
the buttons that load, save or reset the settings (the window's menus offer the same)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from wmstudio.errors import WmStudioError
from wmstudio.gui.config_form import ConfigForm
from wmstudio.gui.log_reading import LogSnapshot
from wmstudio.gui.trigger_preview import TriggerGrid
from wmstudio.gui.worker import in_background


class SetupPanel(QWidget):
    changed = Signal()  # the settings changed (``form.error`` says whether they are valid)
    said = Signal(str)  # a confirmation for the status bar
    error = Signal(str, str)  # title, message

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(QLabel("<b>Experiment</b>"))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        host = QWidget()
        self._column = QVBoxLayout(host)
        self.form = ConfigForm()
        self._column.addWidget(self.form)
        box = QGroupBox("Trigger set preview")
        tb = QVBoxLayout(box)
        self.preview_button = QPushButton("Preview trigger set")
        self.preview_button.setToolTip("Build the trigger set these settings describe and show it (nothing is trained)")
        self.trigger_grid = TriggerGrid()
        tb.addWidget(self.preview_button)
        tb.addWidget(self.trigger_grid)
        self._column.addWidget(box)
        self._column.addStretch(1)
        scroll.setWidget(host)
        outer.addWidget(scroll, 1)
        self.validation_label = QLabel("")
        self.validation_label.setWordWrap(True)
        outer.addWidget(self.validation_label)
        buttons = QHBoxLayout()
        for text, tip, slot in (("Load config…", "Load an experiment config (TOML or JSON)", self.load_config_dialog),
                                ("Save config…", "Save these settings as a TOML config that `wmstudio run` also reads",
                                 self.save_config_dialog),
                                ("Demo", "Reset to the built-in demo (digits, no download)", self.load_demo_config)):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        outer.addLayout(buttons)
        self.checkpoint_panel: Any = None
        self._engine = False
        self.preview_button.setEnabled(False)
        self.preview_button.clicked.connect(self.preview_triggers)
        self.form.changed.connect(self._form_changed)

    # ------------------------------------------------------------ settings files
    def load_demo_config(self) -> None:
        from wmstudio.config_io import load_config
        from wmstudio.resources import example_config

        self.form.set_config(load_config(example_config("demo")))
        self.said.emit("Settings: the built-in demo (digits, no download)")

    def load_config_dialog(self) -> None:
        from wmstudio.gui.file_dialogs import choose_config

        self.load_config_file(choose_config(self))

    def load_config_file(self, path: str | Path) -> bool:
        from wmstudio.config_io import load_config

        if not path:
            return False
        try:
            self.form.set_config(load_config(path))
        except WmStudioError as exc:
            self.error.emit("Cannot load the config", str(exc))
            return False
        self.said.emit(f"Loaded the settings from {path}")
        return True

    def save_config_dialog(self) -> None:
        if self.form.config_error is not None:  # a checkpoint missing here may exist where the config is run
            self.form.reveal_error()
            self.error.emit("The settings are not valid", str(self.form.config_error))
            return
        from wmstudio.gui.file_dialogs import save_config

        text = save_config(self, self.form.config())
        if text:
            self.said.emit(text)

    # ------------------------------------------------------------ public API
    def engine_ready(self) -> None:
        """The engine is loaded: the model choices, the checkpoint check and the preview can work."""
        from wmstudio.catalog import MODELS
        from wmstudio.gui.checkpoint_panel import CheckpointPanel

        self._engine = True
        self.form.set_model_choices(list(MODELS.names()))
        self.checkpoint_panel = CheckpointPanel()
        self.checkpoint_panel.attach(self.form)
        self._column.insertWidget(1, self.checkpoint_panel)
        self.preview_button.setEnabled(True)

    def set_busy(self, busy: bool) -> None:
        """While a job runs, the preview waits (it would compete for the same cores)."""
        self.preview_button.setEnabled(self._engine and not busy)

    def show_log(self, snap: LogSnapshot, own: bool = False) -> None:
        """The shown log's trigger set, and (unless ``own``: a log this window's run just wrote from the form)
        its settings in the form, so that the form and the shown log are one experiment."""
        if snap.trigger is not None:
            images, labels, scheme, classes = snap.trigger
            self.trigger_grid.show_set(images, labels, scheme, classes, "from the run log")
        if not own and snap.config:
            self.load_log_settings(snap.path, snap.config)

    def load_log_settings(self, path: Path, config: dict[str, Any]) -> bool:
        """The settings a run log recorded, into the form. A Python model file the log names is not taken over:
        the form would import it to check the checkpoint, and a log may come from anyone (docs/checkpoints.md);
        the user chooses that file themselves."""
        import copy

        from wmstudio.config_io import load_config

        data = copy.deepcopy(config)
        model = data.get("model") if isinstance(data.get("model"), dict) else {}
        named = model.get("file") if isinstance(model.get("file"), str) else ""
        if named:
            model["file"] = ""
        try:
            self.form.set_config(load_config(data=data))
        except WmStudioError as exc:
            self.said.emit(f"Settings: kept; those recorded in {path.name} cannot be used ({exc})")
            return False
        note = (f"; it names the model file {named}, not taken over: choose it yourself (model.file) to use it"
                if named else "")
        self.said.emit(f"Settings: those of {path.name}{note}")
        return True

    def clear(self) -> None:
        self.trigger_grid.clear()

    def preview_triggers(self) -> None:
        if self.form.config_error is not None:
            self.form.reveal_error()
            return
        from wmstudio.pipeline import preview_trigger_set

        cfg = self.form.config()
        self.preview_button.setEnabled(False)
        self.trigger_grid.caption.setText("Building the trigger set…")

        def shown(result: Any) -> None:
            ts, classes = result
            self.trigger_grid.show_set(ts.images.numpy(), ts.labels.numpy(), ts.scheme, classes,
                                       str(ts.params.get("preview_note", "")))
            self.preview_button.setEnabled(True)

        def failed(message: str, _details: str, _user_error: bool) -> None:
            self.trigger_grid.caption.setText(f"Cannot preview: {message}")
            self.preview_button.setEnabled(True)

        in_background(self, lambda: preview_trigger_set(cfg), shown, failed, "preview")

    def _form_changed(self) -> None:
        err = self.form.error
        # rich text: the message is escaped, or a bound such as "<= 0.95" would be read as a tag and cut
        self.validation_label.setText("" if err is None else f"<span style='color:#d9534f'>⚠ {html.escape(str(err))}</span>")
        self.changed.emit()
