"""Whether an OpenGL context can be made here (the 3D view needs one; the 2D views do not)."""

from __future__ import annotations

import os

from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

_cached: tuple[bool, str] | None = None


def opengl_status() -> tuple[bool, str]:
    """(available, reason). Probed once with an offscreen surface; never crashes."""
    global _cached
    if _cached is not None:
        return _cached
    import torchvision  # noqa: F401 - before any OpenGL context: see wmstudio.gui.engine

    platform = QGuiApplication.platformName()
    if os.environ.get("WMSTUDIO_NO_OPENGL"):
        _cached = (False, "OpenGL turned off (WMSTUDIO_NO_OPENGL is set)")
    elif platform in ("offscreen", "minimal"):
        _cached = (False, f"the '{platform}' Qt platform has no OpenGL")
    else:
        ctx = QOpenGLContext()
        if not ctx.create():
            _cached = (False, "no OpenGL context could be created (no GPU driver or software renderer)")
        else:
            surface = QOffscreenSurface()
            surface.setFormat(ctx.format())
            surface.create()
            ok = surface.isValid() and ctx.makeCurrent(surface)
            if ok:
                ctx.doneCurrent()
            _cached = (ok, "" if ok else "an OpenGL context was created but could not be made current")
    return _cached
