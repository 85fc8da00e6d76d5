"""Every view tells the truth: exports match the screen, axes read right, stale data is cleared.

Plain widgets on the offscreen Qt platform, with synthetic runs (no training) unless a stored
landscape is needed.
"""

from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from gui_helpers import colour_box, image_array, make_window, show_synthetic_run
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from wmstudio.gui.theme import plot_colors

OTHER_TITLES = {"accuracy": ("Loss", "Verification p-value"), "loss": ("Accuracy", "Verification p-value"),
                "p_value": ("Accuracy", "Loss")}


def _render_svg(path, size: QSize) -> np.ndarray:  # noqa: ANN001
    img = QImage(size, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    painter = QPainter(img)
    QSvgRenderer(str(path)).render(painter)
    painter.end()
    return image_array(img)


def _screen(plot) -> np.ndarray:  # noqa: ANN001
    """What the window shows of one plot: its widget grabbed, cropped to the plot's rectangle."""
    view = plot.scene().views()[0]
    shot = image_array(view.grab().toImage())
    ratio = shot.shape[1] / view.viewport().width()
    r = view.mapFromScene(plot.sceneBoundingRect()).boundingRect()
    return shot[int(r.top() * ratio):int((r.bottom() + 1) * ratio), int(r.left() * ratio):int((r.right() + 1) * ratio)]


def _shown_window(qtbot, tmp_path):  # noqa: ANN001, ANN202
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    show_synthetic_run(win)
    qtbot.wait(50)
    return win


def test_each_exported_svg_matches_its_png_and_the_screen_and_holds_only_its_plot(qtbot, tmp_path) -> None:
    win = _shown_window(qtbot, tmp_path)
    written = win.export_plots(tmp_path / "figs")
    c = plot_colors("light")
    axes = pg.getConfigOption("foreground")
    axes = QColor(*pg.mkColor(axes).getRgb()[:3]).name()
    plots = {**win.metrics_view.plots, **win.drift_view.plots}
    for name, colour in (("accuracy", c["trigger"]), ("loss", c["trigger"]), ("p_value", c["pvalue"]),
                         ("drift_l2", c["drift"])):
        if name.startswith("drift"):
            win.tabs.setCurrentWidget(win.drift_view)
            qtbot.wait(50)
        png = QImage(str(tmp_path / "figs" / f"{name}.png"))
        svg_path = tmp_path / "figs" / f"{name}.svg"
        assert svg_path in written and not png.isNull()
        screen, ours, svg = _screen(plots[name]), image_array(png), _render_svg(svg_path, png.size())
        h, w = screen.shape[:2]
        tol = [max(0.02, 5 / w)] * 2 + [max(0.02, 5 / h)] * 2  # 2% or 5 screen pixels
        # the curve's extremes, and the axes with their tick labels, sit at the same places in all three
        for col, tol in ((colour, 60), (axes, 150)):  # axis lines are thin: take their anti-aliased edges too
            boxes = [colour_box(a, col, tol) for a in (screen, ours, svg)]
            assert None not in boxes, (name, col)
            for k, fmt in ((1, "png"), (2, "svg")):
                assert (np.abs(np.subtract(boxes[k], boxes[0])) <= tol).all(), \
                    f"{name}.{fmt} vs screen ({col}): {np.round(boxes[k], 3)} vs {np.round(boxes[0], 3)}"
        text = svg_path.read_text()
        for other in OTHER_TITLES.get(name, ()):
            assert f">{other}" not in text, f"{name}.svg also holds the plot {other!r}"


def test_exported_png_legend_has_the_screen_proportions(qtbot, tmp_path) -> None:
    win = _shown_window(qtbot, tmp_path)
    plot = win.metrics_view.loss
    win.metrics_view.curves["test_loss"].setData([], [])  # the test colour now only appears in the legend
    qtbot.wait(50)
    win.export_plots(tmp_path / "figs")
    colour = plot_colors("light")["test"]
    shown = colour_box(_screen(plot), colour)
    exported = colour_box(image_array(QImage(str(tmp_path / "figs" / "loss.png"))), colour)
    assert shown is not None and exported is not None
    np.testing.assert_allclose(exported, shown, atol=0.01)


def _axis_ticks(axis) -> list[tuple[float, str]]:  # noqa: ANN001
    lo, hi = axis.range
    out = []
    for spacing, values in axis.tickValues(lo, hi, axis.height()):
        out += zip(values, axis.tickStrings(values, axis.autoSIPrefixScale, spacing), strict=True)
    return out


def _read_power(label: str) -> int:
    digits = label.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
    return 0 if label == "1" else int(digits.removeprefix("10"))


def test_p_value_axis_reads_whole_decades_without_a_factor(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    qtbot.wait(50)
    axis = win.metrics_view.pval.getAxis("left")
    for filled in (False, True):
        if filled:
            show_synthetic_run(win)  # p-values down to 10^-60
            win.series.eval_rows[-1]["p_value"] = 1e-300  # and one at the floor the plot clips to
            win.metrics_view.revision = -1
            win._show_all(win.series)
            qtbot.wait(50)
        ticks = _axis_ticks(axis)
        assert "x1e" not in axis.labelString() and "(" not in axis.labelString()
        assert 2 <= len(ticks) <= max(2, axis.height() // 20), ticks
        for value, label in ticks:
            assert re.fullmatch(r"1|10⁻[⁰¹²³⁴⁵⁶⁷⁸⁹]+", label), ticks  # no 2 3 4 … 9, no positive powers
            assert _read_power(label) == round(value) and value == round(value), (value, label)
        steps = np.diff([v for v, _ in ticks])
        assert (steps == steps[0]).all()  # evenly spaced
        assert axis.range[1] <= np.log10(2.0)  # the view does not run above p = 1
    assert min(v for v, _ in ticks) <= -250
