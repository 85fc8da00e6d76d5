"""Text labels painted onto an exported picture without overlapping, and the export size's bounds.

``place_labels`` keeps the most important labels (axis titles, then model names, then tick values)
where they were asked for, moves a title or a name a line at a time until it is free, and leaves out
a tick value that would cover another label: a figure never shows two texts on top of each other.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QRectF

from wmstudio.errors import ConfigError

EXPORT_MIN_PX, EXPORT_MAX_PX = 64, 8192
SIZE_RULE = (f"each side from {EXPORT_MIN_PX} (room for the labels) to {EXPORT_MAX_PX} pixels (a larger picture takes "
             "gigabytes of memory to render)")
MOVABLE_RANKS = (0, 1)  # axis titles and model names move to a free place; tick values (2) are left out instead


def export_size(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` as two whole numbers of pixels within the export's bounds, or a ConfigError saying why not."""
    m = re.fullmatch(r"\s*(\d{1,9})\s*[x×X*]\s*(\d{1,9})\s*", text)
    if not m:
        raise ConfigError("3D export size", f"expected WIDTHxHEIGHT such as 1600x1200, {SIZE_RULE}; got {text!r:.40}")
    return check_export_size(int(m[1]), int(m[2]))


def check_export_size(width: int, height: int) -> tuple[int, int]:
    """The size, when both sides are within the export's bounds (else a ConfigError saying which are allowed)."""
    if not (EXPORT_MIN_PX <= width <= EXPORT_MAX_PX and EXPORT_MIN_PX <= height <= EXPORT_MAX_PX):
        raise ConfigError("3D export size", f"{width}x{height} is out of bounds: {SIZE_RULE}")
    return width, height


def place_labels(labels: list[tuple[int, QRectF]], bounds: QRectF, step: float) -> list[QRectF | None]:
    """Where to paint each label (``(rank, rectangle asked for)``; rank 0 first): inside ``bounds`` and
    clear of every label placed before it. Ranks in ``MOVABLE_RANKS`` are moved by up to six ``step``s
    down or up to a free place; the others (and a movable one with no free place) get None."""
    placed: list[QRectF] = []
    out: list[QRectF | None] = [None] * len(labels)
    for k in sorted(range(len(labels)), key=lambda i: labels[i][0]):
        rank, want = labels[k]
        tries = [0.0] + ([d * step for n in range(1, 7) for d in (n, -n)] if rank in MOVABLE_RANKS else [])
        for dy in tries:
            rect = _inside(want.translated(0.0, dy), bounds)
            if not any(rect.intersects(other) for other in placed):
                placed.append(rect)
                out[k] = rect
                break
    return out


def _inside(rect: QRectF, bounds: QRectF) -> QRectF:
    """``rect`` moved (not resized) to lie within ``bounds`` as far as it fits."""
    dx = max(0.0, bounds.left() - rect.left()) - max(0.0, rect.right() - bounds.right())
    dy = max(0.0, bounds.top() - rect.top()) - max(0.0, rect.bottom() - bounds.bottom())
    return rect.translated(dx, dy)
