"""Model registry and checkpoint loading."""

from wmstudio.models.checkpoint import load_checkpoint, load_state_dict_file
from wmstudio.models.registry import MODELS, build_model, last_linear_name

__all__ = ["MODELS", "build_model", "last_linear_name", "load_checkpoint", "load_state_dict_file"]
