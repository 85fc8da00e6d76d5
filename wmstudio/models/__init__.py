"""Model factories (registered in catalog.MODELS) and checkpoint loading."""

from wmstudio.catalog import MODELS
from wmstudio.models.checkpoint import load_checkpoint, load_state_dict_file
from wmstudio.models.registry import build_model, last_linear_name

__all__ = ["MODELS", "build_model", "last_linear_name", "load_checkpoint", "load_state_dict_file"]
