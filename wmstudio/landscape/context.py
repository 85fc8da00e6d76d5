"""Everything a landscape needs, rebuilt from a run log alone: model, data, trigger set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from wmstudio.config import ExperimentConfig, config_from_json
from wmstudio.data import load_dataset
from wmstudio.data.batches import Normalizer
from wmstudio.data.tensorset import ImageTensors
from wmstudio.device import resolve_device
from wmstudio.errors import RunLogError
from wmstudio.landscape.layout import has_conv2d
from wmstudio.models import build_model
from wmstudio.models.registry import output_count
from wmstudio.runlog import RunLogReader

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
    from wmstudio.pipeline import preferred_memory_format

    reader = RunLogReader(path)
    cfg = config_from_json(reader.config_json)
    dev = resolve_device(device)
    d = cfg.data
    try:
        data = load_dataset(d.dataset, d.root, False, d.image_size, d.cache_dir or None, d.channels)
        splits = reader.splits()
        info = reader.data_info()
        trig = reader.trigger()
    except KeyError as exc:
        raise RunLogError(f"{path}: the log lacks {exc} (was the run stopped before its data was written?)") from exc
    normalizer = Normalizer(tuple(info["mean"]), tuple(info["std"]))
    c, h, _ = data.shape
    from wmstudio.model_build import build_from_config

    model = build_from_config(cfg, c, data.num_classes, h, log_origin(path, trust_code, OPT_IN))
    copied = "extract" in reader.stage_names() or ("attack" in reader.stage_names() and cfg.attack.kind == "distill")
    if copied:  # the stolen copy (and its restoration) may be another architecture
        x = cfg.extract
        if x.arch:
            model = build_model(x.arch, c, output_count(cfg.model.num_classes, data.num_classes), h, x.options)
    fmt = preferred_memory_format(cfg)
    if cfg.model.file and cfg.run.channels_last and has_conv2d(model):
        fmt = torch.channels_last  # a user's conv net too: the evaluator checks it and falls back to NCHW
    model.to(dev).to(memory_format=fmt).eval()
    return LogContext(reader, cfg, dev, model, normalizer, fmt,
                      data.test.subset(torch.from_numpy(splits["test"]), "test").to(dev),
                      data.train.subset(torch.from_numpy(splits["owner"]), "owner").to(dev),
                      torch.from_numpy(trig["images"]).to(dev), torch.from_numpy(trig["labels"]).to(dev),
                      torch.from_numpy(trig["control_images"]).to(dev) if "control_images" in trig else None,
                      trig.get("control_kind", ""))
