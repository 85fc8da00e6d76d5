"""The look of exported figures: light (the default, whatever the app's theme) or dark, the font
family and size, the width and the resolution of raster files, and which formats are written."""

from __future__ import annotations

from dataclasses import dataclass, field

from wmstudio.errors import ConfigError

EXPORT_THEMES = ("light", "dark")
EXPORT_FORMATS = ("png", "svg", "pdf")
COLORS = {  # background, text and axes, grid
    "light": {"background": "#ffffff", "foreground": "#222222", "grid": "#b8b8b8"},
    "dark": {"background": "#1e1e21", "foreground": "#d0d0d0", "grid": "#5a5a5e"},
}


@dataclass(frozen=True)
class ExportStyle:
    """``theme``: light or dark (the app resolves "follow the app's theme" to one of them); ``font_size`` in
    points; ``width_in``: the figure's width in inches (the height follows the plot's shape on screen);
    ``dpi``: pixels per inch of PNG files (vector files hold their heat maps at this resolution too)."""

    theme: str = "light"
    font_family: str = "DejaVu Sans"
    font_size: float = 9.0
    width_in: float = 6.4
    dpi: int = 200
    formats: tuple[str, ...] = field(default=("png", "svg"))

    def __post_init__(self) -> None:
        if self.theme not in EXPORT_THEMES:
            raise ConfigError("export.theme", f"must be one of {', '.join(EXPORT_THEMES)}, got {self.theme!r}")
        if not self.font_family.strip():
            raise ConfigError("export.font_family", "must name a font family, got an empty name")
        if not 4.0 <= float(self.font_size) <= 40.0:
            raise ConfigError("export.font_size", f"must be between 4 and 40 points, got {self.font_size}")
        if not 1.0 <= float(self.width_in) <= 40.0:
            raise ConfigError("export.width_in", f"must be between 1 and 40 inches, got {self.width_in}")
        if not 50 <= int(self.dpi) <= 1200:
            raise ConfigError("export.dpi", f"must be between 50 and 1200, got {self.dpi}")
        bad = [f for f in self.formats if f not in EXPORT_FORMATS]
        if bad or not self.formats:
            raise ConfigError("export.formats", f"must be some of {', '.join(EXPORT_FORMATS)}, got {list(self.formats)}")

    @property
    def colors(self) -> dict[str, str]:
        return COLORS[self.theme]


def available_fonts() -> list[str]:
    """The font families matplotlib can draw with here (sorted, each once)."""
    from matplotlib import font_manager

    return sorted({f.name for f in font_manager.fontManager.ttflist})


def font_known(family: str) -> bool:
    """Whether matplotlib has ``family`` (or it is one of its generic names such as "serif")."""
    return family in ("serif", "sans-serif", "monospace", "cursive", "fantasy") or family in available_fonts()
