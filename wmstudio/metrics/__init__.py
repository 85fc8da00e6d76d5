"""Evaluation, weight drift and ownership verification."""

from wmstudio.metrics.drift import DriftTracker, layer_groups
from wmstudio.metrics.evaluate import evaluate, evaluate_with_predictions, predict
from wmstudio.metrics.verification import binomial_p_value

__all__ = ["DriftTracker", "binomial_p_value", "evaluate", "evaluate_with_predictions", "layer_groups", "predict"]
