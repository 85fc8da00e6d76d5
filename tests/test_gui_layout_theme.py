"""The window under a live theme switch and at small sizes: the idle Pause button stays "Pause", the
plots' titles stay readable in the new theme, the window shrinks to about 900 x 500 pixels without
overlapping tick labels, the trigger preview never pushes the file buttons out of the form."""

from __future__ import annotations

import re
from pathlib import Path

import pyqtgraph as pg
import pytest
from gui_helpers import fake_landscape, make_window, settle, show_synthetic_run
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from wmstudio.gui import theme


def _luminance(c: QColor) -> float:
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours (1 .. 21; 4.5 reads as body text)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _title_colour(plot: pg.PlotItem) -> QColor:
    m = re.search(r"color:\s*(#[0-9a-fA-F]{6,8})", plot.titleLabel.item.toHtml())
    assert m, plot.titleLabel.item.toHtml()
    return QColor(m[1])


@pytest.fixture()
def dark_start(qtbot, tmp_path):  # noqa: ANN001, ANN201
    """A window made in the dark theme (as ``--theme dark`` makes it); the light theme back afterwards."""
    app = QApplication.instance()
    theme.apply(app, "dark")
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    yield win
    theme.apply(app, "light")


@pytest.mark.parametrize("switch_to", ["light", "dark"])
def test_a_live_theme_switch_keeps_pause_idle_and_titles_readable(dark_start, qtbot, switch_to) -> None:
    win = dark_start
    if switch_to == "dark":
        win.switch_theme("light")
    show_synthetic_run(win)
    lv = win.tabs.landscape_view
    win.tabs.setCurrentWidget(lv)
    lv.show_landscape(fake_landscape("plane"))
    settle(qtbot, win)
    assert not win.pause_action.isEnabled() and not win.cancel_action.isEnabled()  # idle: nothing to pause or cancel
    win.pause_action.trigger()  # the shortcut, or the toolbar's button, while nothing runs
    win.run_panel.pause_button.toggle()
    win.switch_theme(switch_to)
    settle(qtbot, win)
    assert win.run_panel.pause_button.text() == "Pause" and not win.run_panel.pause_button.isChecked()
    lv.redraw()  # the map's title is set again on every redraw
    for plot in (lv.map, win.tabs.metrics_view.acc):
        view = plot.scene().views()[0]
        bg = view.backgroundBrush().color()
        assert (bg.lightness() > 128) == (switch_to == "light"), (switch_to, bg.name())
        ratio = contrast(_title_colour(plot), bg)
        assert ratio >= 4.5, f"{plot.titleLabel.text!r}: contrast {ratio:.1f} on {bg.name()}"
        axis = plot.getAxis("bottom")
        assert contrast(axis.textPen().color(), bg) >= 4.5


def _label_rects(axis: pg.AxisItem) -> list:
    from PySide6.QtGui import QImage, QPainter

    img = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(img)
    try:
        return [rect for rect, _flags, _text in axis.generateDrawSpecs(painter)[2]]
    finally:
        painter.end()


def test_the_window_shrinks_to_900_by_500_without_overlapping_tick_labels(qtbot, tmp_path) -> None:
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    show_synthetic_run(win)
    assert win.minimumSizeHint().width() <= 900, win.minimumSizeHint()
    win.resize(900, 500)
    qtbot.waitUntil(lambda: win.width() <= 900 and win.height() <= 500)
    mv, dv = win.tabs.metrics_view, win.tabs.drift_view
    for view, plots in ((mv, (mv.acc, mv.loss, mv.pval)), (dv, (dv.l2, dv.cos, dv.heat))):
        win.tabs.setCurrentWidget(view)
        settle(qtbot, view)
        for plot in plots:
            rects = _label_rects(plot.getAxis("left"))
            for k, a in enumerate(rects):
                for b in rects[k + 1:]:
                    assert not a.intersects(b), f"{plot.titleLabel.text!r}: tick labels overlap ({a}, {b})"


def test_the_trigger_preview_never_widens_the_settings_column(qtbot, tmp_path) -> None:
    import numpy as np

    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(900, 500)
    win.show()
    settle(qtbot, win)
    before = win.setup.minimumSizeHint().width()
    images = np.zeros((36, 3, 32, 32), np.uint8)
    win.setup.trigger_grid.show_set(images, np.arange(36) % 10, "content", ["automobile"] * 10)
    settle(qtbot, win)
    host = win.setup.form.parentWidget()
    scroll = host.parentWidget().parentWidget()  # the settings' scroll area
    assert host.minimumSizeHint().width() <= scroll.viewport().width(), "the column scrolls sideways"
    assert win.setup.minimumSizeHint().width() <= before + 1
    for path in ("model.checkpoint",):
        w = win.setup.form.widgets.get(path)
        if w is not None:
            browse = w.parentWidget().findChildren(pg.QtWidgets.QPushButton)[0]
            right = browse.mapTo(scroll.viewport(), browse.rect().topRight()).x()
            assert right <= scroll.viewport().width(), f"{path}'s … button is {right} px right, the column {scroll.viewport().width()}"


def test_the_app_icon_comes_from_ui_and_renders(qtbot) -> None:
    from wmstudio.gui.app import app_icon
    from wmstudio.resources import resource_path

    svg = resource_path("icons", "wmstudio.svg", kind="ui")
    desktop = Path(__file__).resolve().parents[1] / "packaging" / "desktop" / "icons" / "io.github.wmstudio.WatermarkStudio.svg"
    assert svg.read_bytes() == desktop.read_bytes()  # the window shows the icon the desktop entry installs
    icon = app_icon()
    assert not icon.isNull()
    image = icon.pixmap(32, 32).toImage()
    assert image.width() == 32 and image.pixelColor(16, 16).alpha() == 255  # drawn, not an empty pixmap


def test_section_titles_take_each_themes_text_colour_when_switched_live(qtbot, qapp) -> None:  # noqa: ANN001
    """The settings' section titles have a style sheet: they kept the previous theme's text colour after a
    live switch (black on dark, then light grey on white: nearly invisible)."""
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QLabel

    from wmstudio.gui.form_parts import Section

    section = Section("2b · Model extraction", "tip", QLabel("body"))
    qtbot.addWidget(section)
    section.show()

    def text_lightness() -> int:
        QApplication.processEvents()
        return section.header.palette().color(QPalette.ColorRole.ButtonText).lightness()

    try:
        theme.apply(qapp, "light")
        assert text_lightness() < 100
        theme.apply(qapp, "dark")
        assert text_lightness() > 160
        theme.apply(qapp, "light")
        assert text_lightness() < 100
    finally:
        theme.apply(qapp, "light")
