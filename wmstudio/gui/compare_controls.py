"""Compare's controls: the options above the plot (metric, x axis, smoothing, colour) and the run list
beside it (filter, check buttons, the runs in their colours). ``CompareView`` builds one of each and
wires them to its plot."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from wmstudio.gui.compare_curves import GLOBAL
from wmstudio.gui.flow_layout import FlowLayout
from wmstudio.metric_names import METRIC_LABELS

METRIC_NAMES = {k: METRIC_LABELS[k] for k in ("trigger_acc", "test_acc", "trigger_loss", "test_loss", "drift_l2",
                                              "drift_cos", "p_value")}
BY_RUN = ""  # the colour choice "one colour per run"
SMOOTH_STEPS = 100  # the smoothing slider's positions: weight = position / SMOOTH_STEPS
SMOOTH_MAX = 99  # TensorBoard's largest weight, 0.99


class CompareOptions(QWidget):
    """The row above the plot: the metric drawn, the x axis (global step or steps since a stage began), the
    smoothing and how runs are coloured. Wraps in a narrow window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = FlowLayout(self)
        row.addWidget(QLabel("Metric"))
        self.metric_box = QComboBox()
        for k, v in METRIC_NAMES.items():
            self.metric_box.addItem(v, k)
        self.metric_box.setToolTip("the evaluation series drawn for every checked run")
        row.addWidget(self.metric_box)
        row.addWidget(QLabel("x axis"))
        self.align_box = QComboBox()
        self.align_box.addItem("global step", GLOBAL)
        self.align_box.setToolTip("global step, or the steps since a stage began: each run's evaluations of that "
                                  "stage start at 0, so runs whose stage began at different steps overlay")
        row.addWidget(self.align_box)
        row.addWidget(QLabel("Smoothing"))
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, SMOOTH_MAX)
        self.smooth_slider.setFixedWidth(110)
        self.smooth_slider.setToolTip("exponential moving average as in TensorBoard (0: the measured values); "
                                      "restarted at every stage boundary")
        self.smooth_label = QLabel("0.00")
        row.addWidget(self.smooth_slider)
        row.addWidget(self.smooth_label)
        row.addWidget(QLabel("Colour"))
        self.color_box = QComboBox()
        self.color_box.addItem("one per run", BY_RUN)
        self.color_box.setToolTip("a distinct colour per run, or colour by a setting that differs between the runs")
        row.addWidget(self.color_box)


class RunList(QWidget):
    """The runs beside the plot: a filter, "Check shown" / "Uncheck all", the list in the runs' colours
    (check to draw) and how many are shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        sv = QVBoxLayout(self)
        sv.setContentsMargins(0, 0, 0, 0)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter: name or setting (lr=0.01 RTAL)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("keeps the runs matching every word: part of the run's name or of a setting, "
                                    "or key=value (lr=0.01 matches finetune.lr = 0.01)")
        sv.addWidget(self.filter_edit)
        buttons = QHBoxLayout()
        self.check_all = QPushButton("Check shown")
        self.check_all.setToolTip("check every run the filter keeps")
        self.check_none = QPushButton("Uncheck all")
        buttons.addWidget(self.check_all)
        buttons.addWidget(self.check_none)
        sv.addLayout(buttons)
        self.list = QListWidget()
        self.list.setToolTip("runs opened in this session, in their colours; uncheck to hide one")
        # long names shortened in the middle, so the end that tells same-named runs apart stays in view
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        sv.addWidget(self.list, 1)
        self.count_label = QLabel("")
        sv.addWidget(self.count_label)
