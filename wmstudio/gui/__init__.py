"""The desktop app (PySide6 + pyqtgraph). The only part of wmstudio that imports Qt.

Importing this package imports neither torch nor pyqtgraph: the window is shown first and
``wmstudio.gui.engine.load_engine`` loads the engine on a worker thread (it documents the
import-order work-around for the llvmpipe/triton LLVM crash). Python's own import function is
kept here, before PySide6 replaces it with one that reads the source of every module imported
after it (for PySide's ``__feature__`` switches); the engine's thousand-odd modules are imported
with the plain one.
"""

import builtins
import sys

PLAIN_IMPORT = builtins.__import__ if "PySide6" not in sys.modules else None
