"""The landscape tab's controls: what to compute (a form built from ``LandscapeSpec``'s fields, as the
experiment form is built from the config schema), Compute / Published view / Stop, and how to show it
(the stored landscape, the metric, the colours, log scale, contours) with a status line.

The form's choices, ranges and tooltips come from the fields' metadata (``wmstudio.landscape.spec``), so
the boxes never allow a value the engine refuses nor refuse one it allows; the resolution's range follows
the kind (a path allows more points than a grid). Settings of some kinds only (the span of the random and
Hessian grids, the Hessian's loss, the random directions' type, the curve's training) are shown while such
a kind is chosen.
"""

from __future__ import annotations

import dataclasses
import html
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.flow_layout import FlowLayout
from wmstudio.landscape.figures import LABELS
from wmstudio.landscape.spec import METRICS, LandscapeSpec, expected_text, limits

COLORMAPS = ("viridis", "inferno", "plasma", "magma", "cividis", "turbo")
# the settings the form shows, in order, with their labels; the others keep LandscapeSpec's defaults
FORM_FIELDS = {"kind": "Kind", "resolution": "Resolution", "data": "Clean data", "images": "Images",
               "precision": "Precision", "span": "Span", "loss": "Hessian of", "dir_type": "Directions move",
               "curve_epochs": "Curve epochs", "curve_lr": "Curve rate"}
# fields shown only for these kinds (the engine ignores them for the others)
KIND_FIELDS = {"span": ("random", "hessian", "hessian_line"), "loss": ("hessian", "hessian_line"),
               "dir_type": ("random",), "curve_epochs": ("curve",), "curve_lr": ("curve",)}
NAME_TAGS = {"span": "span{}", "loss": "{}", "dir_type": "{}", "curve_epochs": "{}ep", "curve_lr": "lr{}"}
FORM_DEFAULTS = {"resolution": 31}  # a quicker first landscape than the engine's default (41)
COMPUTE_TIP = "Compute this landscape into the current run log (resumes an unfinished one)"

_SPEC_FIELDS = {f.name: f for f in dataclasses.fields(LandscapeSpec)}


def field_tip(name: str, kind: str) -> str:
    """A form field's tooltip: its help text and what it allows (for ``kind``)."""
    help_text = html.escape(str(_SPEC_FIELDS[name].metadata.get("help", "")), quote=False)
    meta = _SPEC_FIELDS[name].metadata
    if meta.get("choices") or meta.get("min") is None:
        return f"<p>{help_text}</p>"  # rich text: Qt wraps it (plain text ran off the screen in one line)
    return f"<p>{help_text}<br><i>allowed: {html.escape(expected_text(name, kind), quote=False)}</i></p>"


class LandscapeControls(QWidget):
    compute_requested = Signal(object)  # LandscapeSpec of the form
    published_requested = Signal(object)  # LandscapeSpec of the published view (the form shows its kind)
    stop_requested = Signal()
    landscape_selected = Signal(str)  # a stored landscape's name
    display_changed = Signal()  # the metric, colours, log scale or contours changed: draw again

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # ---- what to compute
        row = FlowLayout()  # wraps in a narrow window
        self.fields: dict[str, QComboBox | QSpinBox | QDoubleSpinBox] = {}
        self.labels: dict[str, QLabel] = {}
        defaults = LandscapeSpec()
        for name, label in FORM_FIELDS.items():
            w = self._make_field(name, FORM_DEFAULTS.get(name, getattr(defaults, name)))
            self.fields[name], self.labels[name] = w, QLabel(label)
            row.addWidget(self.labels[name])
            row.addWidget(w)
        self.kind, self.resolution, self.data, self.images, self.precision = (
            self.fields[n] for n in ("kind", "resolution", "data", "images", "precision"))
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip(COMPUTE_TIP)
        self.published_button = QPushButton("Published view")
        self.published_button.setToolTip("One click: the PCA plane of the fine-tuning and restoration checkpoints, "
                                         "centred on the restored model, showing the trigger-set loss with the path")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop; the points computed so far stay in the log")
        for b in (self.compute_button, self.published_button, self.stop_button):
            row.addWidget(b)
        row.addStretch(1)
        outer.addLayout(row)
        # ---- how to show it
        row2 = FlowLayout()
        self.stored = QComboBox()
        self.stored.setToolTip("landscapes stored in this run log")
        self.stored.setMinimumWidth(140)
        self.metric_box = QComboBox()
        for m in METRICS:
            self.metric_box.addItem(LABELS[m], m)
        self.metric_box.setCurrentIndex(METRICS.index("trigger_loss"))
        self.metric_box.setToolTip("which per-point value to draw")
        self.log_scale = QCheckBox("log scale")
        self.log_scale.setToolTip("draw log10 of the loss")
        self.contours = QCheckBox("contours")
        self.contours.setChecked(True)
        self.contours.setToolTip("contour lines with their values on the 2D map (drawn once the landscape is complete)")
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.status = QLabel("no landscape")
        for label, w in (("Stored", self.stored), ("Show", self.metric_box), ("Colours", self.cmap)):
            row2.addWidget(QLabel(label))
            row2.addWidget(w)
        row2.addWidget(self.log_scale)
        row2.addWidget(self.contours)
        row2.addWidget(self.status, 1)
        outer.addLayout(row2)
        # ---- wiring
        self.kind.currentTextChanged.connect(self._follow_kind)
        self._follow_kind(self.kind.currentText())
        self.compute_button.clicked.connect(lambda: self.compute_requested.emit(self.spec()))
        self.published_button.clicked.connect(self.request_published)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        for box in (self.metric_box, self.cmap):
            box.currentIndexChanged.connect(lambda _i: self.display_changed.emit())
        for check in (self.log_scale, self.contours):
            check.toggled.connect(lambda _on: self.display_changed.emit())
        self.stored.activated.connect(lambda _i: self.landscape_selected.emit(self.stored.currentText()))

    def _make_field(self, name: str, value: object) -> QComboBox | QSpinBox | QDoubleSpinBox:
        """The box for LandscapeSpec field ``name``: its choices, or a number box within its limits."""
        meta = _SPEC_FIELDS[name].metadata
        if meta.get("choices"):
            w: QComboBox | QSpinBox | QDoubleSpinBox = QComboBox()
            w.addItems([str(c) for c in meta["choices"]])
            w.setCurrentText(str(value))
        elif _SPEC_FIELDS[name].type in ("float", float):
            w = QDoubleSpinBox()
            lo, hi = limits(name)
            w.setDecimals(4)
            step = 10 ** math.floor(math.log10(float(value)))  # type: ignore[arg-type]
            w.setSingleStep(step)
            # a bound the engine excludes (span > 0, rate > 0) is kept out by one step of the box's precision
            w.setRange(lo + (10 ** -w.decimals() if meta.get("min_exclusive") else 0), hi)
            w.setValue(float(value))  # type: ignore[arg-type]
        else:
            w = QSpinBox()
            lo, hi = limits(name)
            w.setRange(int(lo), int(hi))
            w.setValue(int(value))  # type: ignore[arg-type]
        w.setToolTip(field_tip(name, LandscapeSpec().kind))
        return w

    def _follow_kind(self, kind: str) -> None:
        """The number boxes' ranges and tooltips for ``kind`` (a path's resolution allows more points)."""
        for name, w in self.fields.items():
            if isinstance(w, QSpinBox):
                lo, hi = limits(name, kind)
                w.setRange(int(lo), int(hi))
                w.setToolTip(field_tip(name, kind))
            shown = kind in KIND_FIELDS.get(name, (kind,))
            w.setVisible(shown)
            self.labels[name].setVisible(shown)

    def kind_values(self, kind: str) -> dict[str, object]:
        """The values of the fields only ``kind`` uses, as the form holds them."""
        out: dict[str, object] = {}
        for name, kinds in KIND_FIELDS.items():
            if kind in kinds:
                w = self.fields[name]
                out[name] = w.currentText() if isinstance(w, QComboBox) else w.value()
        return out

    # ------------------------------------------------------------ requests
    def spec(self) -> LandscapeSpec:
        """The landscape the form describes, named after its kind, resolution and what differs from the defaults."""
        kind = self.kind.currentText()
        extra = self.kind_values(kind)
        defaults = LandscapeSpec()
        # named after what differs from the defaults, so a second landscape of the kind is not a resume of the first
        tags = [NAME_TAGS[k].format(f"{v:g}" if isinstance(v, float) else v) for k, v in extra.items()
                if v != getattr(defaults, k)]
        return LandscapeSpec(kind=kind, name="-".join([kind, str(self.resolution.value()), *tags, *self._data_tags()]),
                             resolution=self.resolution.value(), data=self.data.currentText(), images=self.images.value(),
                             precision=self.precision.currentText(), **extra)  # type: ignore[arg-type]

    def _data_tags(self) -> list[str]:
        """Name tags for the clean data, the image count and the precision where they are not the defaults:
        a landscape computed again in fp32, or on other images, is a new one, not a clash with the stored one
        ("exists with other settings"; the form has no name field)."""
        d = LandscapeSpec()
        tags = [self.data.currentText()] if self.data.currentText() != d.data else []
        tags += [f"{self.images.value()}img"] if self.images.value() != d.images else []
        return tags + ([self.precision.currentText()] if self.precision.currentText() != d.precision else [])

    def request_published(self) -> None:
        """The published view with the form's resolution, data, images and precision; the form then shows
        its kind and its metric (the trigger-set loss)."""
        self.kind.setCurrentText(LandscapeSpec.published().kind)  # the controls say what is being computed
        spec = LandscapeSpec.published(self.resolution.value())
        spec.data, spec.images, spec.precision = self.data.currentText(), self.images.value(), self.precision.currentText()
        spec.name = "-".join([spec.name, *self._data_tags()])
        self.metric_box.setCurrentIndex(METRICS.index("trigger_loss"))
        self.published_requested.emit(spec)

    def set_computing(self, busy: bool) -> None:
        """While a landscape computes, Stop is the one button that works."""
        self.compute_button.setEnabled(not busy)
        self.published_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def set_can_compute(self, ok: bool, why_not: str = "") -> None:
        """Compute and Published view work only when ``ok``; the tooltip says why not."""
        for b in (self.compute_button, self.published_button):
            b.setEnabled(ok)
        self.compute_button.setToolTip(COMPUTE_TIP if ok else f"Cannot compute now: {why_not or 'a job is running'}")

    def set_kind_reasons(self, reasons: dict[str, str]) -> None:
        """Kinds the shown log cannot have are disabled, their reason as the item's tooltip."""
        model = self.kind.model()
        for i in range(self.kind.count()):
            why = reasons.get(self.kind.itemText(i), "")
            model.item(i).setEnabled(not why)
            self.kind.setItemData(i, f"Not for this log: {why}" if why else None, Qt.ItemDataRole.ToolTipRole)
        if reasons.get(self.kind.currentText()):
            usable = [i for i in range(self.kind.count()) if not reasons.get(self.kind.itemText(i))]
            if usable:
                self.kind.setCurrentIndex(usable[0])

    # ------------------------------------------------------------ display
    def set_stored(self, names: list[str], current: str = "") -> None:
        """The stored landscapes' names, ``current`` selected (no signal)."""
        self.stored.blockSignals(True)
        self.stored.clear()
        self.stored.addItems(names)
        if current in names:
            self.stored.setCurrentText(current)
        self.stored.blockSignals(False)

    def select_stored(self, name: str) -> None:
        """Show ``name`` as the selected stored landscape (added when it is new)."""
        if self.stored.findText(name) < 0:
            self.stored.addItem(name)
        self.stored.setCurrentText(name)

    @property
    def metric(self) -> str:
        """The metric to draw (a ``METRICS`` name)."""
        return str(self.metric_box.currentData())

    @property
    def log_scale_on(self) -> bool:
        return self.log_scale.isChecked()

    @property
    def contours_on(self) -> bool:
        return self.contours.isChecked()

    @property
    def colormap(self) -> str:
        return self.cmap.currentText()

    def set_status(self, text: str, tip: str | None = None) -> None:
        """The status line (and its tooltip, when given)."""
        self.status.setText(text)
        if tip is not None:
            self.status.setToolTip(tip)
