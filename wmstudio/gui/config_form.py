"""The experiment settings as a form, built from the config schema (so it can never drift from it).

Every field of :class:`wmstudio.config.ExperimentConfig` becomes a widget with the field's help
text as its tooltip. After each edit the whole config is validated by the engine's own checks; the
field at fault is flagged in red with the message, and :attr:`ConfigForm.error` says what is wrong.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolBox,
    QVBoxLayout,
    QWidget,
)

from wmstudio.config import ExperimentConfig, from_dict, validate
from wmstudio.errors import ConfigError

PATH_FIELDS = {"data.root": "folder", "data.cache_dir": "folder", "model.checkpoint": "file", "model.file": "file",
               "trigger.folder": "folder", "trigger.source.root": "folder", "finetune.source.root": "folder"}
INVALID_STYLE = "border: 2px solid #d9534f; border-radius: 3px;"
SECTION_TITLES = {"run": "Run", "data": "Data set", "model": "Model", "trigger": "Trigger set",
                  "embed": "1 · Embed the watermark", "finetune": "2 · Fine-tune (the attack)",
                  "extract": "2b · Model extraction (alternative attack)",
                  "attack": "2c · Removal attack (kind: finetune uses 2 / 2b)", "restore": "3 · Restore (owner's data only)"}


def _format_float(v: float) -> str:
    return repr(float(v)) if (abs(v) >= 1e-3 or v == 0) else f"{v:.3g}"


class ConfigForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        self.kinds: dict[str, type] = {}
        self.error: ConfigError | None = None
        self._loading = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toolbox = QToolBox()
        layout.addWidget(self.toolbox)
        hints = typing.get_type_hints(ExperimentConfig)
        for f in dataclasses.fields(ExperimentConfig):
            page = QWidget()
            form = QFormLayout(page)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            self._add_fields(form, hints[f.name], f.name)
            self.toolbox.addItem(page, SECTION_TITLES.get(f.name, f.name))
            self.toolbox.setItemToolTip(self.toolbox.count() - 1, f.metadata.get("help", ""))
        self.toolbox.currentChanged.connect(lambda _i: self._fit_section())
        self.set_config(ExperimentConfig())
        self._fit_section()

    def _fit_section(self) -> None:
        """Keep the open section tall enough for all its rows.

        The form shares its column with the trigger preview; without a floor, a preview that fills
        in would squeeze the open section to a couple of rows (the column scrolls instead).
        """
        page = self.toolbox.currentWidget()
        if page is None:
            return
        buttons = [b for b in self.toolbox.findChildren(QAbstractButton) if b.parent() is self.toolbox]
        chrome = sum(b.sizeHint().height() for b in buttons) + 2 * self.toolbox.frameWidth() + 4 * len(buttons)
        self.toolbox.setMinimumHeight(page.sizeHint().height() + chrome)

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
            w.setToolTip(f"<b>{path}</b><br>{meta.get('help', '')}")
            w.setObjectName(path)
            label = f.name.replace("_", " ") if prefix.count(".") == 0 else f"{path.split('.', 1)[1].replace('_', ' ')}"
            if path in PATH_FIELDS:
                row = QWidget()
                h = QHBoxLayout(row)
                h.setContentsMargins(0, 0, 0, 0)
                h.addWidget(w)
                browse = QPushButton("…")
                browse.setFixedWidth(28)
                browse.setToolTip(f"Choose a {PATH_FIELDS[path]}")
                browse.clicked.connect(lambda _=False, p=path: self._browse(p))
                h.addWidget(browse)
                form.addRow(label, row)
            else:
                form.addRow(label, w)
            self.widgets[path] = w
            self.kinds[path] = tp

    def _make_widget(self, path: str, tp: Any, meta: dict[str, Any]) -> QWidget:
        choices = meta.get("choices")
        if tp is bool:
            w = QCheckBox()
            w.toggled.connect(self._edited)
            return w
        if choices:
            w = QComboBox()
            w.addItems([str(c) for c in choices])
            w.currentIndexChanged.connect(self._edited)
            return w
        if path == "model.arch":  # the registry, and free text for torchvision:<name>
            from wmstudio.models import MODELS

            w = QComboBox()
            w.setEditable(True)
            w.addItems(list(MODELS))
            w.currentTextChanged.connect(self._edited)
            return w
        if tp is int:
            w = QSpinBox()
            lo, hi = meta.get("min"), meta.get("max")
            w.setRange(int(lo) if lo is not None else -1_000_000, int(hi) if hi is not None else 100_000_000)
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
        if PATH_FIELDS[path] == "folder":
            chosen = QFileDialog.getExistingDirectory(self, f"Choose {path}", w.text())
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, f"Choose {path}", w.text())
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
                w.setText(_format_float(value))
            else:
                w.setText(str(value))

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
            from wmstudio.config import tomllib

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

    def widget(self, path: str) -> QWidget:
        return self.widgets[path]

    # ------------------------------------------------------------ validation
    def _edited(self, *_args: object) -> None:
        if self._loading:
            return
        for w in self.widgets.values():
            if w.styleSheet():
                w.setStyleSheet("")
        try:
            self.config()
            self.error = None
        except ConfigError as exc:
            self.error = exc
            w = self.widgets.get(exc.field) or self.widgets.get(exc.field.rsplit(".", 1)[0])
            if w is not None:
                w.setStyleSheet(INVALID_STYLE)
                w.setToolTip(f"<b>{exc.field}</b><br><span style='color:#d9534f'>{exc}</span>")
        self.changed.emit()

    def reveal_error(self) -> None:
        """Open the section holding the field at fault and focus it."""
        if self.error is None:
            return
        names = [f.name for f in dataclasses.fields(ExperimentConfig)]
        section = self.error.field.split(".")[0]
        if section in names:
            self.toolbox.setCurrentIndex(names.index(section))
        w = self.widgets.get(self.error.field)
        if w is not None:
            w.setFocus()
