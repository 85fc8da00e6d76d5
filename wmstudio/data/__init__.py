"""Data sets as uint8 tensors, the owner/attacker/test split, and the fast on-device batch path."""

from wmstudio.data.registry import load_dataset
from wmstudio.data.tensorset import DataPair, ImageTensors

__all__ = ["DataPair", "ImageTensors", "load_dataset"]
