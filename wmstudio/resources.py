"""Locating the files in ``resources/`` (example configs, themes, icons) and ``ui/``.

In a source checkout or editable install they sit beside the package; a wheel installs them under
``<prefix>/share/wmstudio/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _roots(kind: str) -> list[Path]:
    return [_HERE.parent / kind, Path(sys.prefix) / "share" / "wmstudio" / kind]


def resource_path(*parts: str, kind: str = "resources") -> Path:
    for root in _roots(kind):
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{'/'.join(parts)} not found in any of {', '.join(map(str, _roots(kind)))}")


def example_config(name: str = "demo") -> Path:
    return resource_path("examples", f"{name}.toml")
