"""The model a config describes, built (untrained): the one place a config becomes a network."""

from __future__ import annotations

import torch

from wmstudio.config import ExperimentConfig
from wmstudio.models import build_model
from wmstudio.models.code_trust import CodeOrigin
from wmstudio.models.registry import output_count


def build_from_config(cfg: ExperimentConfig, channels: int, num_classes: int, size: int,
                      origin: CodeOrigin | None = None) -> torch.nn.Module:
    """The model a config describes (APP embeds into a variant with separate trigger BatchNorm).

    ``origin``: where the config came from when the user did not write it (a run log's stored config);
    its ``model.file`` is then imported only if the user trusts it (``wmstudio.models.code_trust``).
    None: the user's own config, whose model file is imported as named."""
    if origin is not None:
        origin.check(cfg.model.file)
    model = build_model(cfg.model.arch, channels, output_count(cfg.model.num_classes, num_classes), size, cfg.model.options,
                        cfg.model.file, cfg.model.factory)
    if cfg.embed.method == "app":
        from wmstudio.methods.dual_bn import to_dual_bn

        to_dual_bn(model)
    return model
