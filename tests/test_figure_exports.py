"""Exported figures open the same outside Qt: each SVG rendered by librsvg (``rsvg-convert``) and, where
installed, by a browser engine (headless Chromium) matches the PNG export (the curves' extremes, the
legend's colour samples, the axes' spines, the heat maps' cells); exports are light whatever the app's
theme unless asked to follow it, with the chosen font and size; PDF files are written too.

``rsvg-convert`` comes with Debian's librsvg2-bin (scripts/sysdeps.sh installs it for the test command).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import export_plots, fake_landscape, make_window, show_synthetic_run
from PySide6.QtGui import QColor

from wmstudio.figures.render import build, rc_params, write
from wmstudio.figures.spec import FigureSpec, Line, Panel
from wmstudio.figures.style import ExportStyle
from wmstudio.gui.theme import plot_colors

RSVG = shutil.which("rsvg-convert")
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
needs_rsvg = pytest.mark.skipif(RSVG is None, reason="rsvg-convert is missing (Debian package librsvg2-bin; "
                                "scripts/sysdeps.sh installs it)")
FOREGROUND = "#222222"  # the light export style's axes and texts


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _rsvg(svg: Path, size: tuple[int, int]) -> np.ndarray:
    out = svg.with_name(svg.stem + ".rsvg.png")
    subprocess.run([RSVG, "-w", str(size[0]), "-h", str(size[1]), "-b", "white", "-o", str(out), str(svg)],
                   check=True, timeout=60)
    return _read_png(out)


def _chromium(svg: Path, size: tuple[int, int], tmp: Path) -> np.ndarray:
    """The SVG as a browser shows it: an HTML page holding it at the PNG's size, screenshotted."""
    tmp.mkdir(parents=True, exist_ok=True)
    page = tmp / f"{svg.stem}.html"
    page.write_text(f'<html><body style="margin:0;background:white"><img src="{svg.name}" '
                    f'style="width:{size[0]}px;height:{size[1]}px;display:block"></body></html>')
    shutil.copy(svg, tmp / svg.name)
    shot = tmp / f"{svg.stem}.chromium.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp / 'profile'}", f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={shot}", page.as_uri()], check=True, timeout=120, capture_output=True)
    return _read_png(shot)[:size[1], :size[0]]


def _mask(a: np.ndarray, colour: str, tol: int = 60) -> np.ndarray:
    c = QColor(colour)
    return np.abs(a - np.array([c.red(), c.green(), c.blue()])).sum(-1) < tol


def _box(mask: np.ndarray) -> np.ndarray | None:
    """(left, right, top, bottom) of a mask's pixels as fractions of the image: a curve's extremes."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    h, w = mask.shape
    return np.array([xs.min() / w, xs.max() / w, ys.min() / h, ys.max() / h])


def _spines(a: np.ndarray) -> tuple[list[float], list[float]]:
    """The rows and columns (fractions of the image) crossed by a long dark line: the axes' spines."""
    dark = _mask(a, FOREGROUND, 40)
    h, w = dark.shape

    def runs(counts: np.ndarray, need: float, size: int) -> list[float]:
        idx = np.nonzero(counts >= need)[0]
        groups = np.split(idx, np.nonzero(np.diff(idx) > 2)[0] + 1) if len(idx) else []
        return [float(g.mean()) / size for g in groups if len(g)]

    return runs(dark.sum(1), 0.3 * w, h), runs(dark.sum(0), 0.25 * h, w)


def _compare(name: str, png: np.ndarray, other: np.ndarray, colours: list[str], engine: str) -> None:
    assert png.shape == other.shape, (name, engine, png.shape, other.shape)
    h, w = png.shape[:2]
    tol = np.array([6 / w, 6 / w, 6 / h, 6 / h])  # 6 pixels of the PNG
    rows, cols = _spines(png)
    assert rows and cols, f"{name}.png: no axes found"
    rows2, cols2 = _spines(other)
    for mine, theirs, what in ((rows, rows2, "horizontal spines"), (cols, cols2, "vertical spines")):
        assert len(theirs) == len(mine) and np.allclose(theirs, mine, atol=6 / min(h, w)), \
            f"{name}.svg in {engine}: {what} at {np.round(theirs, 3)}, the PNG's at {np.round(mine, 3)}"
    bottom = max(rows)  # the lowest spine: the legend's samples sit below it
    for colour in colours:
        a, b = _mask(png, colour), _mask(other, colour)
        box_a, box_b = _box(a), _box(b)
        assert box_a is not None, f"{name}.png has no {colour}"
        assert box_b is not None, f"{name}.svg in {engine} has no {colour}"
        assert (np.abs(box_b - box_a) <= tol).all(), \
            f"{name}.svg in {engine}: {colour} spans {np.round(box_b, 3)}, in the PNG {np.round(box_a, 3)}"
        ratio = b.sum() / max(1, a.sum())  # a line drawn as a band covers many times the pixels
        assert 0.6 < ratio < 1.6, f"{name}.svg in {engine}: {colour} covers {ratio:.2f} x the PNG's pixels"
        if name in LEGEND_BELOW:
            for img, fmt in ((png, "png"), (other, f"svg in {engine}")):
                assert _mask(img, colour)[int(bottom * h) + 8:].any(), f"{name}.{fmt}: no legend sample in {colour}"
    diff = np.abs(png - other).mean()
    assert diff < 8, f"{name}.svg in {engine} differs from the PNG by {diff:.1f} grey levels on average"


LEGEND_BELOW = ("accuracy", "loss", "p_value", "landscape_path")  # the drift plots have no legend


def _exported(qtbot, tmp_path: Path, mode: str = "light") -> tuple[object, list[Path], dict[str, list[str]]]:  # noqa: ANN001
    win = make_window(qtbot, tmp_path, quick=False)
    win.resize(1280, 720)
    win.show()
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    show_synthetic_run(win)
    mv = win.tabs.metrics_view
    mv.curves["test_loss"].setData([], [])  # the test colour is then only in the loss plot's legend
    lv = win.tabs.landscape_view
    lv.show_landscape(fake_landscape("plane", n=21))
    written = export_plots(win, tmp_path / "figs")
    lv.show_landscape(fake_landscape("line"))
    written += export_plots(win, tmp_path / "path")
    c = plot_colors(mode)
    colours = {"accuracy": [c["trigger"]], "loss": [c["trigger"], c["test"]], "p_value": [c["pvalue"]],
               # no drift rows in the synthetic run: the drift colours were only in the legends they no longer have
               "drift_l2": [], "drift_cos": [], "landscape_2d": ["#e53935", "#4fc3f7"],
               "landscape_path": ["#2f7ed8", "#e4572e"]}
    return win, written, colours


@needs_rsvg
def test_every_exported_svg_renders_in_librsvg_as_its_png(qtbot, tmp_path) -> None:
    _win, written, colours = _exported(qtbot, tmp_path)
    svgs = {p.stem: p for p in written if p.suffix == ".svg"}
    assert set(colours) | {"layer_drift"} <= set(svgs)
    for name, svg in svgs.items():
        text = svg.read_text()
        assert "vector-effect" not in text and "non-scaling-stroke" not in text, name
        png = _read_png(svg.with_suffix(".png"))
        rendered = _rsvg(svg, (png.shape[1], png.shape[0]))
        _compare(name, png, rendered, colours.get(name, []), "librsvg")
    # the heat maps are cells, not one solid colour: as many distinct colours in the render as in the PNG
    for name in ("landscape_2d", "layer_drift"):
        png = _read_png(svgs[name].with_suffix(".png"))
        rendered = _read_png(svgs[name].with_name(f"{name}.rsvg.png"))
        distinct = [len(np.unique(a.reshape(-1, 3) // 8, axis=0)) for a in (png, rendered)]
        assert distinct[1] > 0.5 * distinct[0] and distinct[0] > 20, (name, distinct)


@pytest.mark.skipif(CHROMIUM is None or RSVG is None, reason="no headless Chromium here (Debian package chromium)")
def test_exported_svgs_render_in_a_browser_engine_as_their_pngs(qtbot, tmp_path) -> None:
    _win, written, colours = _exported(qtbot, tmp_path)
    for name in ("loss", "landscape_2d", "landscape_path", "layer_drift"):
        svg = next(p for p in written if p.suffix == ".svg" and p.stem == name)
        png = _read_png(svg.with_suffix(".png"))
        shown = _chromium(svg, (png.shape[1], png.shape[0]), tmp_path / "browser")
        _compare(name, png, shown, colours.get(name, []), "chromium")


def test_exports_are_light_in_the_dark_theme_unless_asked_to_follow_it(qtbot, tmp_path) -> None:
    from wmstudio.gui import theme
    from wmstudio.gui.export_settings import export_style

    win = make_window(qtbot, tmp_path, quick=False)
    qtbot.waitUntil(lambda: win.engine, timeout=60_000)
    show_synthetic_run(win)
    try:
        theme.switch(win.settings, "dark")
        style = export_style(win.settings, "dark")
        assert style.theme == "light"
        out = write_plots_one(win, tmp_path / "a.png", style)
        assert tuple(_read_png(out)[2, 2]) == (255, 255, 255)  # a white background in the dark theme
        win.settings.setValue("export/follow_theme", True)
        out = write_plots_one(win, tmp_path / "b.png", export_style(win.settings, "dark"))
        assert _read_png(out)[2, 2].max() < 60  # following the theme: dark
    finally:
        theme.switch(win.settings, "light")


def write_plots_one(win, path: Path, style: ExportStyle) -> Path:  # noqa: ANN001
    from wmstudio.gui.export import export_plot

    return export_plot(win.tabs.metrics_view.acc, path, style)


def test_export_font_and_size_are_the_ones_chosen(tmp_path) -> None:
    import matplotlib

    spec = FigureSpec([Panel(title="Accuracy", xlabel="global step", ylabel="accuracy",
                             lines=[Line(np.arange(5.0), np.arange(5.0) / 4, "#2f7ed8", label="test accuracy")])])
    for family, size in (("DejaVu Serif", 12.0), ("DejaVu Sans", 7.0)):
        style = ExportStyle(font_family=family, font_size=size)
        with matplotlib.rc_context(rc_params(style)):
            fig = build(spec, style)
            ax = fig.axes[0]
            for text in (ax.title, ax.xaxis.label, *ax.get_yticklabels()):
                assert text.get_fontfamily()[0] == family
            assert ax.xaxis.label.get_fontsize() == size
    small = write(spec, tmp_path / "small.pdf", ExportStyle(font_size=7))
    assert small.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(Exception, match="export.font_size"):
        ExportStyle(font_size=1)
    with pytest.raises(Exception, match="export.theme"):
        ExportStyle(theme="sepia")


def test_long_axis_titles_are_wrapped_inside_the_figure(tmp_path) -> None:
    """The 2D map's x title names the axis and the units both share; on a square map it is wider than the
    figure, and the PNG and SVG exports cut it off at both sides. Each title is broken into lines at
    spaces so it fits its panel (never at a hyphen), and every text lies inside the figure."""
    import matplotlib

    from wmstudio.figures.spec import Raster

    xlabel = ("eigenvector 1 (λ = 12.34 of the clean loss); both axes: parameter-space distance along unit "
              "Hessian eigenvectors")
    ylabel = "eigenvector 2 (λ = 3.1); " + "a long vertical title " * 6
    title = "test loss: hessian landscape 'a name long enough to run past the figure's right edge' " * 2
    panel = Panel(title=title, xlabel=xlabel, ylabel=ylabel, equal_aspect=True,
                  raster=Raster(np.arange(121.0).reshape(11, 11), (-1, 1, -1, 1), np.array([[0.0] * 3, [1.0] * 3]),
                                (0, 120), "test loss"))
    spec = FigureSpec([panel], aspect=0.8)
    style = ExportStyle()
    with matplotlib.rc_context(rc_params(style)):
        fig = build(spec, style)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        page = fig.bbox
        for text in (ax.xaxis.label, ax.yaxis.label, ax._left_title, *ax.texts):
            box = text.get_window_extent(renderer)
            assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, \
                (text.get_text(), box.bounds, page.bounds)
        assert ax.xaxis.label.get_window_extent(renderer).width <= ax.get_window_extent(renderer).width + 1
        assert "\n" in ax.xaxis.label.get_text() and "parameter-space" in ax.xaxis.label.get_text()
        assert ax.xaxis.label.get_text().replace("\n", " ") == xlabel
    for fmt in ("png", "svg"):
        assert write(spec, tmp_path / f"map.{fmt}", style).stat().st_size > 0
