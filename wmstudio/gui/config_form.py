"""The experiment settings as a form, built from the config schema (so it can never drift from it).

Every field of :class:`wmstudio.config.ExperimentConfig` becomes a widget with the field's help
text as its tooltip, under a label written for people. The sections open and close on their own
(several at once; the form has no scroll bar of its own: the column around it scrolls). After each
edit the whole config is validated by the engine's own checks; the field at fault is flagged in red
with the message, its section's title is marked (also while it is closed), and
:attr:`ConfigForm.error` says what is wrong. A check made outside the config (the checkpoint panel:
the file is missing, not a checkpoint, or does not fit) flags its field the same way through
:meth:`ConfigForm.set_problem`, so that Run refuses to start until it is fixed.

A whole-number box keeps whatever number is typed (a "-5" in a box for counts is kept and flagged,
never turned into 5); its arrows stay within the field's bounds. With a model file set, the model file
builds the model: the architecture box is disabled with a note, and the options go to its factory.
"""

from __future__ import annotations

import dataclasses
import html
import typing
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from wmstudio.config import ExperimentConfig
from wmstudio.config_check import from_dict, validate
from wmstudio.errors import ConfigError
from wmstudio.gui.form_parts import ChoiceBox, IntBox, Section, bounds_text, format_float

CHECKPOINT_FILTER = "Checkpoints (*.pt *.pth *.th *.safetensors);;Run logs (*.h5 *.hdf5);;All files (*)"
# the fields chosen with a file dialog: (folder or the file filter, the dialog's title)
PATH_FIELDS = {"data.root": ("folder", "Choose the data set's folder"),
               "data.cache_dir": ("folder", "Choose the folder for decoded-image caches"),
               "model.checkpoint": (CHECKPOINT_FILTER, "Choose the checkpoint to start from (or a run log)"),
               "model.file": ("Python files (*.py);;All files (*)", "Choose the Python file that defines the model"),
               "trigger.folder": ("folder", "Choose the folder of trigger images"),
               "trigger.source.root": ("folder", "Choose the folder of the trigger source data set"),
               "finetune.source.root": ("folder", "Choose the folder of the fine-tuning data set")}
# labels written for people (the dotted config name stays in each tooltip); others: the field's name
FIELD_LABELS = {"name": "run name", "eval_batch_size": "evaluation batch size", "record_trajectory": "record trajectory",
                "trajectory_max_params": "trajectory: max parameters", "channels_last": "channels-last memory",
                "threads": "CPU threads", "dataset": "data set", "root": "data folder", "download": "download if missing",
                "image_size": "image size (px)", "normalize": "normalisation", "split_seed": "split seed",
                "seed_scope": "seeds vary",
                "owner_size": "owner's images", "attacker_fraction": "attacker's share", "attacker_size": "attacker's images",
                "test_size": "test images", "crop_padding": "crop padding (px)", "flip": "horizontal flips",
                "cache_dir": "cache folder", "arch": "architecture", "checkpoint": "start from checkpoint",
                "file": "model file (.py)", "factory": "factory function", "strict": "strict loading",
                "trust_checkpoint_code": "trust code in checkpoints", "num_classes": "classes (0: the data set's)",
                "reinit_head": "re-initialise the head", "options": "model options", "scheme": "trigger scheme",
                "size": "trigger images", "label_mode": "labels", "target_class": "target class",
                "source_class": "source class", "eps": "perturbation ε", "noise_std": "noise σ",
                "stamp_fraction": "stamp size (share)", "folder": "image folder", "lr": "learning rate",
                "weight_decay": "weight decay", "step_size": "scheduler step", "gamma": "scheduler γ",
                "batch_size": "batch size", "eval_every_steps": "evaluate every N steps (0: per epoch)",
                "clean_epochs": "clean pre-training epochs", "trigger_fraction": "trigger share of a batch",
                "augment_triggers": "augment triggers", "data_fraction": "share of attacker data",
                "data_size": "attacker images", "mix_owner_fraction": "owner data mixed in",
                "owner_step_every": "owner step every", "stop_on_plateau": "stop on plateau", "min_delta": "smallest change that counts",
                "source.name": "source data set", "source.root": "source data folder",
                "source.download": "download the source", "source.split": "source split",
                "curvature_top_k": "curvature: top eigenvalues", "curvature_probes": "curvature: trace probes",
                "curvature_images": "curvature: clean images"}
INVALID_STYLE = "border: 2px solid #d9534f; border-radius: 3px;"
SECTION_TITLES = {"run": "Run", "data": "Data set", "model": "Model", "trigger": "Trigger set",
                  "embed": "1 · Embed the watermark", "finetune": "2 · Fine-tune (the attack)",
                  "extract": "2b · Model extraction (alternative attack)",
                  "attack": "2c · Removal attack", "restore": "3 · Restore (owner's data only)"}
OPEN_AT_START = ("run", "data", "model")


def field_label(key: str, name: str) -> str:
    """The form's label of a field (``key``: its path below the section, ``name``: the field's own name):
    the written label, else the name with spaces for underscores (never a raw ``snake_case`` name)."""
    return FIELD_LABELS.get(key) or FIELD_LABELS.get(name if "." not in key else key) or key.replace("_", " ")


class ConfigForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self.for_kinds: dict[str, tuple[QFormLayout, tuple[str, ...]]] = {}  # a field only some attack kinds use
        self.kinds: dict[str, type] = {}
        self.tips: dict[str, str] = {}  # each field's tooltip while it is valid
        self.config_error: ConfigError | None = None  # what the config's own validation says
        self.problems: dict[str, str] = {}  # field -> what a check outside the config found (set_problem)
        self.error: ConfigError | None = None  # config_error, else the first problem: Run refuses while set
        self._loading = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.sections: dict[str, Section] = {}
        hints = typing.get_type_hints(ExperimentConfig)
        for f in dataclasses.fields(ExperimentConfig):
            page = QWidget()
            form = QFormLayout(page)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setContentsMargins(14, 0, 0, 6)
            self._add_fields(form, hints[f.name], f.name)
            section = Section(SECTION_TITLES.get(f.name, f.name), f.metadata.get("help", ""), page)
            section.set_open(f.name in OPEN_AT_START)
            self.sections[f.name] = section
            layout.addWidget(section)
        self._arch_tip = self.tips["model.arch"]
        self.labels["model.arch"].setWordWrap(True)  # its note while a model file is set
        self.set_config(ExperimentConfig())

    # ------------------------------------------------------------ building
    def _add_fields(self, form: QFormLayout, cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            path = f"{prefix}.{f.name}"
            tp = hints[f.name]
            meta = dict(f.metadata)
            if dataclasses.is_dataclass(tp):
                self._add_fields(form, tp, path)
                continue
            w = self._make_widget(path, tp, meta)
            bounds = bounds_text(meta)
            self.tips[path] = (f"<b>{path}</b><br>{html.escape(str(meta.get('help', '')))}"
                               + (f"<br><i>{html.escape(bounds)}</i>" if bounds else ""))
            w.setToolTip(self.tips[path])
            w.setObjectName(path)
            key = path.split(".", 1)[1]
            label = QLabel(field_label(key, f.name))
            self.labels[path] = label
            if path in PATH_FIELDS:
                row = QWidget()
                h = QHBoxLayout(row)
                h.setContentsMargins(0, 0, 0, 0)
                h.addWidget(w)
                browse = QPushButton("…")
                browse.setFixedWidth(28)
                browse.setToolTip(PATH_FIELDS[path][1])
                browse.clicked.connect(lambda _=False, p=path: self._browse(p))
                h.addWidget(browse)
                form.addRow(label, row)
            else:
                form.addRow(label, w)
            self.widgets[path] = w
            self.kinds[path] = tp
            if meta.get("kinds"):
                self.for_kinds[path] = (form, tuple(meta["kinds"]))

    def _make_widget(self, path: str, tp: Any, meta: dict[str, Any]) -> QWidget:
        choices = meta.get("choices")
        if tp is bool:
            w = QCheckBox()
            w.toggled.connect(self._edited)
            return w
        if choices:
            w = ChoiceBox()
            w.addItems([str(c) for c in choices])
            w.currentIndexChanged.connect(self._edited)
            return w
        if path == "model.arch":  # the registry (set_model_choices, once the engine is loaded), free text too
            w = ChoiceBox()
            w.setEditable(True)
            w.currentTextChanged.connect(self._edited)
            return w
        if tp is int:
            w = IntBox(meta.get("min"), meta.get("max"))
            w.valueChanged.connect(self._edited)
            return w
        w = QLineEdit()
        if typing.get_origin(tp) is dict or tp is dict:
            w.setPlaceholderText("{ key = value }  (TOML inline table)")
        w.textChanged.connect(self._edited)
        return w

    def _browse(self, path: str) -> None:
        w = self.widgets[path]
        assert isinstance(w, QLineEdit)
        what, title = PATH_FIELDS[path]
        if what == "folder":
            chosen = QFileDialog.getExistingDirectory(self, title, w.text())
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, title, w.text(), what)
        if chosen:
            w.setText(chosen)

    # ------------------------------------------------------------ values
    def set_config(self, cfg: ExperimentConfig) -> None:
        self._loading = True
        try:
            data = cfg.to_dict()
            for path, w in self.widgets.items():
                value: Any = data
                for part in path.split("."):
                    value = value[part]
                self._set_widget(w, self.kinds[path], value)
        finally:
            self._loading = False
        self._edited()

    @staticmethod
    def _set_widget(w: QWidget, tp: Any, value: Any) -> None:
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            if w.isEditable():
                w.setCurrentText(str(value))
            else:
                w.setCurrentIndex(max(0, w.findText(str(value))))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QLineEdit):
            if isinstance(value, list):
                w.setText(", ".join(map(str, value)))
            elif isinstance(value, dict):
                w.setText("{ " + ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in value.items()) + " }"
                          if value else "")
            elif tp is float:
                w.setText(format_float(value))
            else:
                w.setText(str(value))
            w.setCursorPosition(0)  # a value longer than the field shows its beginning, not its end

    def _raw(self, path: str) -> Any:
        w, tp = self.widgets[path], self.kinds[path]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, QSpinBox):
            return w.value()
        text = w.text().strip() if isinstance(w, QLineEdit) else ""
        if tp is float:
            try:
                return float(text)
            except ValueError:
                raise ConfigError(path, f"expected a number, got {text!r}") from None
        if typing.get_origin(tp) is list:
            return [part.strip() for part in text.split(",") if part.strip()]
        if typing.get_origin(tp) is dict or tp is dict:
            if not text:
                return {}
            from wmstudio.config_io import tomllib

            try:
                return tomllib.loads(f"v = {text}")["v"]
            except Exception:  # noqa: BLE001 - any TOML error is reported at the field
                raise ConfigError(path, f"expected a TOML inline table like {{ width = 16 }}, got {text!r}") from None
        return text

    def values(self) -> dict[str, Any]:
        """The form as nested config data (raises ConfigError naming the field that cannot be read)."""
        data: dict[str, Any] = {}
        for path in self.widgets:
            node = data
            parts = path.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = self._raw(path)
        return data

    def config(self) -> ExperimentConfig:
        return validate(from_dict(ExperimentConfig, self.values()))

    def set_value(self, path: str, value: Any) -> None:
        self._set_widget(self.widgets[path], self.kinds[path], value)

    def set_model_choices(self, names: list[str]) -> None:
        """The model registry's names in the architecture box (the typed text stays)."""
        w = self.widgets["model.arch"]
        assert isinstance(w, QComboBox)
        text = w.currentText()
        self._loading = True
        try:
            w.clear()
            w.addItems(names)
            w.setCurrentText(text)
        finally:
            self._loading = False

    def widget(self, path: str) -> QWidget:
        return self.widgets[path]

    # ------------------------------------------------------------ validation
    def revalidate(self) -> None:
        """Checks the whole form again (``error``, the red field) and emits ``changed``."""
        self._edited()

    def set_problem(self, path: str, message: str) -> None:
        """What a check outside the config found wrong with field ``path`` ("": nothing any more). The field is
        flagged like an invalid value and :attr:`error` holds it, so that Run refuses to start."""
        if self.problems.get(path, "") == message:
            return
        if message:
            self.problems[path] = message
        else:
            self.problems.pop(path, None)
        self._edited()

    def _edited(self, *_args: object) -> None:
        if self._loading:
            return
        for path, w in self.widgets.items():
            if w.styleSheet():
                w.setStyleSheet("")
                w.setToolTip(self.tips[path])
        self._follow_model_file()
        self._follow_attack_kind()
        self._follow_label_mode()
        try:
            self.config()
            self.config_error = None
        except ConfigError as exc:
            self.config_error = exc
        self.error = self.config_error or next((ConfigError(p, m) for p, m in self.problems.items()), None)
        if self.error is not None:
            exc = self.error
            w = self.widgets.get(exc.field) or self.widgets.get(exc.field.rsplit(".", 1)[0])
            if w is not None:
                w.setStyleSheet(INVALID_STYLE)
                w.setToolTip(f"<b>{html.escape(exc.field)}</b><br><span style='color:#d9534f'>{html.escape(str(exc))}</span>")
        at_fault = self.error.field.split(".")[0] if self.error is not None else ""
        for name, section in self.sections.items():
            section.set_invalid(str(self.error) if name == at_fault else "")
        self._show_kind_rows()
        self.changed.emit()

    def _follow_model_file(self) -> None:
        """With a model file set, the file builds the model: the architecture box is disabled with a note
        and the options are named as its factory's."""
        file_box = self.widgets["model.file"]
        uses_file = isinstance(file_box, QLineEdit) and bool(file_box.text().strip())
        arch = self.widgets["model.arch"]
        arch.setEnabled(not uses_file)
        self.labels["model.arch"].setText("architecture (not used: the model file builds the model)" if uses_file
                                          else FIELD_LABELS["arch"])
        self.labels["model.options"].setText("options for the model file's factory" if uses_file
                                             else FIELD_LABELS["options"])
        self.tips["model.arch"] = (f"<b>model.arch</b><br>not used: model.file "
                                   f"({html.escape(file_box.text().strip())}) builds the model"
                                   if uses_file else self._arch_tip)
        arch.setToolTip(self.tips["model.arch"])

    def _follow_attack_kind(self) -> None:
        """The removal attack's title says what stage 2 runs: the kind chosen, or (kind finetune) sections 2 / 2b."""
        kind = str(self._raw("attack.kind"))
        section = self.sections.get("attack")
        if section is None:
            return
        title = SECTION_TITLES["attack"] + (": off" if kind == "finetune" else f": {kind}")
        if title != section.title:
            section.title = title
            section.set_invalid(section.invalid)
            if not section.invalid:  # an error's tooltip stays while the error does
                section.header.setToolTip("kind finetune: stage 2 is section 2 (or 2b); this section runs "
                                          "nothing" if kind == "finetune" else f"the {kind} attack runs as stage 2, "
                                          "in place of sections 2 and 2b")

    def _show_kind_rows(self) -> None:
        """Only the chosen attack kind's own settings are shown (a field at fault stays shown, to be fixed)."""
        kind = str(self._raw("attack.kind"))
        at_fault = self.error.field if self.error is not None else ""
        for path, (form, kinds) in self.for_kinds.items():
            form.setRowVisible(self.labels[path], kind in kinds or path == at_fault)

    def _follow_label_mode(self) -> None:
        """The labels' row says what "auto" means for the chosen scheme (a log records the mode it resolved to)."""
        from wmstudio.catalog import AUTO_LABEL_MODE

        if self._raw("trigger.label_mode") != "auto":
            text = FIELD_LABELS.get("label_mode") or "label mode"
        else:
            mode = AUTO_LABEL_MODE.get(str(self._raw("trigger.scheme")))
            text = f"labels (auto: {mode})" if mode else "labels (auto: the folder's own)"
        self.labels["trigger.label_mode"].setText(text)

    def reveal_error(self) -> None:
        """Open the section holding the field at fault and focus it."""
        if self.error is None:
            return
        section = self.sections.get(self.error.field.split(".")[0])
        if section is not None:
            section.set_open(True)
        w = self.widgets.get(self.error.field)
        if w is not None:
            w.setFocus()
