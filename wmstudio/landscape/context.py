"""Everything a landscape needs, rebuilt from a run log alone: model, data, trigger set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from wmstudio.assembly import log_model, memory_format, missing_in_log, split_from_log
from wmstudio.config import ExperimentConfig
from wmstudio.config_io import config_from_json
from wmstudio.data.batches import Normalizer
from wmstudio.data.tensorset import ImageTensors
from wmstudio.device import resolve_device
from wmstudio.runlog_reader import RunLogReader

OPT_IN = "rerun with --trust (wmstudio landscape LOG --trust)"


@dataclass
class LogContext:
    reader: RunLogReader
    cfg: ExperimentConfig
    device: torch.device
    model: nn.Module  # eval mode, on device, weights of the first stage asked for
    normalizer: Normalizer
    memory_format: torch.memory_format  # the one wanted; the evaluator keeps it only where it checks out
    test: ImageTensors  # on device
    owner: ImageTensors  # on device
    trigger_images: torch.Tensor
    trigger_labels: torch.Tensor
    control_images: torch.Tensor | None = None  # the trigger set's control (None in logs without one)
    control_kind: str = ""

    def stages_with_weights(self) -> list[str]:
        return [r.name for r in self.reader.stages() if r.has_weights]

    def state(self, stage: str) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.reader.weights(stage).items()}


def load_context(path: str | Path, device: str = "auto", trust_code: bool = False) -> LogContext:
    """The log's model, data and trigger set. The model is built from the log's stored config, which the
    user did not necessarily write: a Python model file it names is imported only with ``trust_code``
    (``wmstudio landscape --trust``), else UntrustedCodeError (``wmstudio.models.code_trust``)."""
    from wmstudio.models.code_trust import log_origin

    reader = RunLogReader(path)
    cfg = config_from_json(reader.config_json, reader.working_dir())
    dev = resolve_device(device)
    split = split_from_log(cfg, reader)
    try:
        trig = reader.trigger()
    except KeyError as exc:
        raise missing_in_log(reader, exc) from exc
    model = log_model(cfg, reader.stage_names(), split.shape, split.num_classes, log_origin(path, trust_code, OPT_IN))
    fmt = memory_format(cfg, model)  # a user's conv net too: the evaluator checks it and falls back to NCHW
    model.to(dev).to(memory_format=fmt).eval()
    return LogContext(reader, cfg, dev, model, split.normalizer, fmt, split.test().to(dev), split.owner.to(dev),
                      torch.from_numpy(trig["images"]).to(dev), torch.from_numpy(trig["labels"]).to(dev),
                      torch.from_numpy(trig["control_images"]).to(dev) if "control_images" in trig else None,
                      trig.get("control_kind", ""))
