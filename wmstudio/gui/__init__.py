"""The desktop app (PySide6 + pyqtgraph). The only part of wmstudio that imports Qt.

Importing this package imports neither torch nor pyqtgraph: the window is shown first and
``wmstudio.gui.engine.load_engine`` loads the engine on a worker thread (it documents the
import-order work-around for the llvmpipe/triton LLVM crash).
"""
