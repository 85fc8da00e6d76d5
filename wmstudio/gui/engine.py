"""Loading the engine (torch, torchvision and the plot views' modules) after the window is shown.

torchvision is imported first and before any Qt OpenGL context exists: it pulls in
torch._dynamo and triton, whose statically linked LLVM crashes when it is loaded into a process
where Mesa's llvmpipe (the software OpenGL under Xvfb) already loaded its own LLVM. The OpenGL
probe (``gl.opengl_status``) imports it too, so no path can make a context before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def load_engine() -> None:
    """Imports everything the runs and plots need (seconds: it runs on a worker thread)."""
    import torchvision  # noqa: F401 - import order matters, see above

    import wmstudio.pipeline  # noqa: F401
    from wmstudio.gui import (  # noqa: F401
        checkpoint_panel,
        compare_view,
        drift_view,
        landscape_view,
        metrics_view,
        sweep_view,
    )


FIRST_PAINT_WAIT_MS = 400  # a window that is never painted (hidden) starts loading after this anyway


def start_engine(parent: Any, done: Callable[[], None], background: bool,
                 failed: Callable[[str, str], None]) -> Any:
    """Loads the engine, then calls ``done()`` on the UI thread: on a worker (``background``: the
    window stays responsive meanwhile) or right here. In the background, loading starts once the
    window has first painted, so the import does not compete with that paint for the GIL."""
    if not background:
        load_engine()
        done()
        return None
    from PySide6.QtCore import QEvent, QObject, QTimer

    from wmstudio.gui.worker import in_background

    class FirstPaint(QObject):
        def __init__(self) -> None:
            super().__init__(parent)
            self.thread: Any = None
            parent.installEventFilter(self)
            QTimer.singleShot(FIRST_PAINT_WAIT_MS, self.start)

        def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.Paint:
                QTimer.singleShot(0, self.start)  # after this paint is done
            return False

        def start(self) -> None:
            if self.thread is None:
                parent.removeEventFilter(self)
                self.thread = in_background(parent, load_engine, lambda _r: done(),
                                            lambda m, d, _u: failed(m, d), "engine")

    return FirstPaint()
