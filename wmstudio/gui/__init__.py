"""The desktop app (PySide6 + pyqtgraph). The only part of wmstudio that imports Qt.

torchvision is imported here, before any Qt OpenGL context exists: torchvision pulls in
torch._dynamo and triton, whose statically linked LLVM crashes when it is loaded into a process
where Mesa's llvmpipe (the software OpenGL under Xvfb) already loaded its own LLVM.
"""

import torchvision  # noqa: F401 - import order matters, see above
