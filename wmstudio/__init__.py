"""Watermark Studio: trigger-set watermarks, the fine-tuning that washes them out, and restoration.

The engine (everything outside :mod:`wmstudio.gui`) is plain Python and PyTorch; it never imports Qt.
"""

__version__ = "0.1.0"
