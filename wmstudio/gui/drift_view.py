"""The Weight drift tab: total drift (L2) and cosine similarity over time, and the per-layer heat map."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from wmstudio.gui.plot_parts import (
    LEFT_AXIS_PX,
    Crosshair,
    RoomyAxis,
    align_left_axes,
    marked_curve,
    shrinkable_title,
)
from wmstudio.gui.series import RunSeries, StageSpan
from wmstudio.gui.series_view import GrowingXAxis, SeriesView, StageMarks, series_plot, stage_at
from wmstudio.gui.theme import plot_colors
from wmstudio.metric_names import SHORT_LABELS, STAGE_LABELS

REFERENCE_WORDS = {"initial": "the run's initial weights", "watermarked": "the watermarked model",
                   "copy_initial": "the copy's initial weights", "stolen": "the extracted copy"}


def reference_words(stage: str, reference: str) -> str:
    """What a stage's drift is measured from, in words, from the reference its log records."""
    if reference.endswith("_start"):
        start = reference[:-len("_start")]
        return "its own start" if start == stage else f"the start of {STAGE_LABELS.get(start, start)}"
    return REFERENCE_WORDS.get(reference, reference or "its reference (the log does not say which)")


def drift_title(stages: list[StageSpan]) -> str:
    """The drift plot's title: what each stage's drift is measured from, as its log records it."""
    if not stages:
        return "Weight drift from each stage's reference"
    words = [reference_words(sp.name, sp.drift_reference) for sp in stages]
    if len(set(words)) == 1:
        return f"Weight drift from {words[0]}"
    return "Weight drift from: " + "; ".join(f"{STAGE_LABELS.get(sp.name, sp.name)}: {w}"
                                            for sp, w in zip(stages, words, strict=True))



class DriftView(SeriesView):
    """Total drift (L2) and cosine similarity over time, and the per-layer heat map, on one step axis.

    The heat map's columns are placed at the steps of the evaluations they hold (each evaluation
    colours the steps since the one before), so it lines up with the plots above and the stage
    boundaries. One colour scale spans every stage, so stages can be compared; ``set_per_stage``
    scales each stage to its own largest layer drift instead, which shows the small moves of the
    attack and restore stages after the large one of embedding.
    """

    MAX_COLUMNS = 2000  # the heat map's resolution along the steps

    def __init__(self, mode: str = "light", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = plot_colors(mode)
        self.per_stage_box = QCheckBox("scale each stage to its own maximum")
        self.per_stage_box.setToolTip("Off: one colour scale for every stage (comparable across stages). On: each "
                                      "stage's columns divided by that stage's largest layer drift.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Per-layer drift colours:"))
        row.addWidget(self.per_stage_box)
        row.addStretch(1)
        self.layout().insertLayout(1, row)
        self.l2 = series_plot(self.layout_widget, 0, drift_title([]), "L2 distance", legend=False)
        self.cos = series_plot(self.layout_widget, 1, "Cosine similarity to the reference", "cosine similarity", legend=False)
        self.heat = self.layout_widget.addPlot(row=2, col=0, axisItems={"left": RoomyAxis("left")})  # names thinned to fit
        self.heat.setTitle("Per-layer drift (L2 from the stage's reference)", justify="left", size="10pt")
        shrinkable_title(self.heat)
        self.heat.setLabel("bottom", "global step")
        self.heat.setLabel("left", "layer")
        self.heat.getAxis("left").enableAutoSIPrefix(False)
        self.heat.getAxis("left").setTicks([[]])  # its ticks name the layers; with no run there are none
        self.heat.invertY(True)  # the first layer on top
        for p in (self.cos, self.heat):
            p.setXLink(self.l2)
        self.axis_px = LEFT_AXIS_PX
        align_left_axes(self.l2, self.cos, self.heat)
        self.curves = {"drift_l2": marked_curve(self.l2, c["drift"], "L2 distance"),
                       "drift_cos": marked_curve(self.cos, c["cos"], "cosine similarity")}
        self.marked = set(self.curves)
        self.per_stage = False
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat.addItem(self.image)
        # below the map, so the heat map's data area is as wide as the plots above it
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), label="L2 distance", interactive=False,
                                        orientation="horizontal")
        self.colorbar.setImageItem(self.image, insert_in=self.heat)
        self.colorbar.axis.enableAutoSIPrefix(False)
        self.marks = [StageMarks(self.l2, True), StageMarks(self.cos, False), StageMarks(self.heat, False)]
        self.layout_widget.ci.layout.setRowStretchFactor(2, 2)
        self.x_axis = GrowingXAxis(self.l2)
        self.matrix = np.zeros((0, 0))  # (layers, evaluations): L2 drift of each layer
        self.shown = np.zeros((0, 0))  # the same on the colour scale (divided per stage when so set)
        self.steps = np.zeros(0)  # the global step of each column of the matrix
        self.layer_names: list[str] = []
        self.x_range = (0.0, 0.0)  # the steps the heat map covers
        self.crosshair = Crosshair(self.layout_widget, [self.l2, self.cos, self.heat], self.readout, self._describe)
        self.per_stage_box.toggled.connect(self.set_per_stage)
        self._series: RunSeries | None = None
        self._clear_data()

    @property
    def plots(self) -> dict[str, pg.PlotItem]:
        return {"drift_l2": self.l2, "drift_cos": self.cos, "layer_drift": self.heat}

    def clear(self) -> None:
        """Empty every plot and the heat map (another log is opened, or a new run starts)."""
        self.l2.setTitle(drift_title([]), justify="left", size="10pt")
        self._series = None
        self.matrix, self.shown, self.steps = np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0)
        self.image.clear()
        self.heat.getAxis("left").setTicks([[]])  # no layers: no numbers (they read as "layer x0.001, -400")
        super().clear()

    def set_per_stage(self, on: bool) -> None:
        """Colour each stage on its own scale (on) or every stage on one scale (off, the default)."""
        self.per_stage = bool(on)
        if self.per_stage_box.isChecked() != self.per_stage:
            self.per_stage_box.setChecked(self.per_stage)
        if self._series is not None:
            self._draw_heat(self._series)

    def column_stages(self, series: RunSeries) -> np.ndarray:
        """The stage index of each heat-map column."""
        n = self.matrix.shape[1]
        if len(series.eval_rows) == n:
            return np.asarray([int(r["stage"]) for r in series.eval_rows])
        starts = np.asarray([sp.start_step for sp in series.stages[1:]], dtype=np.float64)
        return np.searchsorted(starts, self.steps, side="left")

    def scaled(self, series: RunSeries) -> np.ndarray:
        """The heat map with each stage's block divided by its own maximum.

        Embedding moves the weights far from their initial values; fine-tuning and restoration move
        them a little from the watermarked model. On one colour scale the later stages are dark;
        scaled per stage, each shows which layers it moves most.
        """
        m = self.matrix.copy()
        stage = self.column_stages(series)
        for k in np.unique(stage):
            cols = stage == k
            top = np.nanmax(m[:, cols]) if np.isfinite(m[:, cols]).any() else 0.0
            if top > 0:
                m[:, cols] /= top
        return m

    def _describe(self, plot: pg.PlotItem, x: float, y: float) -> tuple[float, str]:
        if plot is not self.heat:
            return self._read(["drift_l2"] if plot is self.l2 else ["drift_cos"], x, SHORT_LABELS.__getitem__)
        if not self.shown.size:
            return x, ""
        j = self.column_at(x)
        i = int(math.floor(y))
        if j < 0 or not 0 <= i < self.shown.shape[0]:
            return x, ""
        step = float(self.steps[j])
        name = self.layer_names[i] if i < len(self.layer_names) else str(i)
        text = f"step {int(step)}   {stage_at(self.stages, step)}   layer {name}   L2 {self.matrix[i, j]:.4g}"
        if self.per_stage:
            text += f" ({self.shown[i, j]:.2f} of the stage's maximum)"
        return step, text

    def column_at(self, step: float) -> int:
        """The matrix column whose colour is drawn at a step (-1 outside the heat map)."""
        if not len(self.steps) or step < self.x_range[0] or step > self.x_range[1]:
            return -1
        return int(min(np.searchsorted(self.steps, step, side="left"), len(self.steps) - 1))

    def _draw_heat(self, series: RunSeries) -> None:
        self.matrix = series.layer_matrix("l2")
        n = self.matrix.shape[1]
        self.steps = np.asarray(series.layer_steps[:n], dtype=np.float64)
        if not self.matrix.size or len(self.steps) != n:
            self.shown = np.zeros((0, 0))
            self.image.clear()
            return
        self.shown = self.scaled(series) if self.per_stage else self.matrix
        first = min(self.steps[0], series.stages[0].start_step if series.stages else self.steps[0])
        last = self.steps[-1]
        if last <= first:
            first, last = first - 0.5, last + 0.5
        self.x_range = (float(first), float(last))
        cols = int(min(self.MAX_COLUMNS, max(1, math.ceil(last - first))))
        centres = first + (np.arange(cols) + 0.5) * (last - first) / cols
        idx = np.minimum(np.searchsorted(self.steps, centres, side="left"), n - 1)
        self.image.setImage(self.shown[:, idx], autoLevels=False)
        self.image.setRect(QRectF(first, 0.0, last - first, self.matrix.shape[0]))
        hi = float(np.nanmax(self.shown)) if np.isfinite(self.shown).any() else 1.0
        self.colorbar.setLevels((0.0, max(hi, 1e-12)))
        self.colorbar.axis.setLabel("L2 / the stage's maximum" if self.per_stage else "L2 distance (all stages)")
        names = series.layer_names or [str(i) for i in range(self.matrix.shape[0])]
        if names != self.layer_names:
            self.layer_names = list(names)
            step = max(1, len(names) // 24)
            self.heat.getAxis("left").setTicks([[(i + 0.5, nm) for i, nm in enumerate(names) if i % step == 0]])
            width = max(QFontMetricsF(QFont()).horizontalAdvance(nm) for nm in names) + 16
            px = int(min(200, max(LEFT_AXIS_PX, width)))
            if px != self.axis_px:
                self.axis_px = px
                align_left_axes(self.l2, self.cos, self.heat, width=px)

    def show_log(self, series: RunSeries) -> None:
        """A whole run (finished, or opened from a log): drawn, the step axis fitted to it."""
        self.show_series(series)
        self.x_axis.fit(series.last_step or max((r["global_step"] for r in series.eval_rows), default=1))

    def show_series(self, series: RunSeries) -> None:
        if series.revision == self.revision:
            return
        self.revision = series.revision
        self._series = series
        self.stages = series.stages
        title = drift_title(series.stages)
        if title != self.l2.titleLabel.text:
            self.l2.setTitle(title, justify="left", size="10pt")
        for name in self.curves:
            self._set(name, *series.column(name))
        for m in self.marks:
            m.update(series)
        self.x_axis.update(series.last_step)
        self._draw_heat(series)
        self.note_rows(series)
