"""Whether an OpenGL context can be made here (the 3D view needs one; the 2D views do not)."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject
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


def gl_view_window(owner: QObject):  # noqa: ANN201 - a GLViewWindow; pyqtgraph.opengl loads here, once OpenGL works
    """A pyqtgraph 3D view drawn in its own native window (``QOpenGLWindow``), to be put in a widget of
    ``owner`` with ``QWidget.createWindowContainer``.

    Not pyqtgraph's ``GLViewWidget`` (a ``QOpenGLWidget``): the first such widget put into a shown window
    switches the whole window to OpenGL composition, which makes Qt destroy and re-create the window's
    native window: under X11 it vanishes, comes back black and is drawn again a second or more later.
    A ``QOpenGLWindow`` draws into a child window of its own and the main window stays as it is.

    The window belongs to ``owner`` on the C++ side from the start (as it will to the container, which
    deletes it): left to Python, PySide deletes it at exit before the widgets, and the container, still
    on screen, touches a deleted window (a crash when the app or a test session ends).
    """
    from pyqtgraph.opengl.GLViewWidget import GLViewMixin
    from PySide6.QtCore import QRect
    from PySide6.QtOpenGL import QOpenGLWindow

    class GLViewWindow(GLViewMixin, QOpenGLWindow):
        def devicePixelRatioF(self) -> float:  # noqa: N802 - the QWidget name GLViewMixin calls
            return float(self.devicePixelRatio())

        def rect(self) -> QRect:  # GLTextItem projects onto the view's rect
            return QRect(0, 0, self.width(), self.height())

    window = GLViewWindow()
    QObject.setParent(window, owner)  # QObject's, not QWindow's: ownership only (the container re-parents it)
    return window
