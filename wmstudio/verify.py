"""``wmstudio verify``: does a suspect model carry the owner's watermark?

The suspect model's trigger accuracy k/n is tested against chance: under the null hypothesis (a
model that never saw the triggers) each trigger label is matched with probability 1/num_classes,
independently, and the p-value is the binomial upper tail P[X >= k] (``wmstudio.metrics``, the same
test every stage records). The watermark is declared present when the p-value is at most the chosen
false-positive rate. The model's test accuracy is reported beside it (test data from the log's config).

With ``null`` (a file of ``wmstudio null-models``), the trigger accuracy is also ranked among models
trained without the watermark: the empirical p-value ``(1 + #{null >= k}) / (K + 1)`` and a second
decision at the same false-positive rate (unreachable when fpr < 1 / (K + 1): more null models needed).

The suspect model's architecture comes from, in order: ``--arch``/``--model-file``, ``--config``,
the metadata of a wmstudio export, the trigger log's config. Its normalisation: the export's
metadata, else the log's recorded mean/std, else the one the config fits on the owner's data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wmstudio.config import ExperimentConfig, config_from_json, load_config
from wmstudio.data.batches import Normalizer
from wmstudio.errors import ConfigError, TriggerError, WmStudioError
from wmstudio.metrics import binomial_p_value, evaluate
from wmstudio.models.checkpoint import LoadedCheckpoint, load_checkpoint, read_checkpoint


@dataclass
class Verification:
    model: str
    architecture: str
    trigger: str
    n: int
    correct: int
    num_classes: int
    p_value: float
    fpr: float
    needed: int  # the fewest correct triggers whose p-value is <= fpr (n + 1: none)
    test_acc: float | None
    test_note: str
    notes: list[str] = field(default_factory=list)
    null_accs: list[float] | None = None  # the null models' trigger accuracies (with --null)
    null_p_value: float | None = None
    null_needed: int | None = None  # the fewest correct triggers the null distribution accepts (None: unreachable)
    null_file: str = ""

    @property
    def null_verified(self) -> bool | None:
        return None if self.null_p_value is None else self.null_p_value <= self.fpr

    @property
    def threshold_acc(self) -> float | None:
        """The trigger accuracy the empirical decision needs (None without nulls or when unreachable)."""
        return None if self.null_needed is None else self.null_needed / self.n

    @property
    def trigger_acc(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def verified(self) -> bool:
        return self.p_value <= self.fpr

    def text(self) -> str:
        decision = "WATERMARK PRESENT" if self.verified else "not shown (no evidence of the watermark)"
        need = f"needs >= {self.needed}/{self.n} correct" if self.needed <= self.n else "unreachable with this many triggers"
        lines = [f"model        {self.model} ({self.architecture})",
                 f"trigger      {self.trigger}",
                 f"trigger acc  {self.trigger_acc:.3f} ({self.correct}/{self.n})",
                 f"p-value      {self.p_value:.3g}  (binomial upper tail, chance 1/{self.num_classes} per trigger)",
                 f"decision     {decision} at false-positive rate {self.fpr:g} ({need})",
                 f"test acc     {self.test_acc:.3f} ({self.test_note})" if self.test_acc is not None
                 else f"test acc     not measured: {self.test_note}"]
        if self.null_accs is not None and self.null_p_value is not None:
            k = len(self.null_accs)
            present = "WATERMARK PRESENT" if self.null_verified else "not shown"
            need = (f"needs >= {self.null_needed}/{self.n} correct" if self.null_needed is not None
                    else f"unreachable: {k} null models give p >= {1 / (k + 1):.3g}; need >= {math.ceil(1 / self.fpr) - 1}")
            lines += [f"null models  {k} from {self.null_file}: trigger acc mean {float(np.mean(self.null_accs)):.3f}, "
                      f"max {max(self.null_accs):.3f}",
                      f"empirical p  {self.null_p_value:.3g}  ((1 + nulls scoring >= {self.correct}/{self.n}) / ({k} + 1))",
                      f"decision     {present} at false-positive rate {self.fpr:g} against the null models ({need})"]
        return "\n".join(lines + [f"note         {n}" for n in self.notes])


def needed_correct(n: int, num_classes: int, fpr: float) -> int:
    """The fewest matches out of n whose binomial p-value is at most ``fpr`` (n + 1 when none is)."""
    lo, hi = 0, n + 1
    while lo < hi:  # the p-value falls as k grows
        mid = (lo + hi) // 2
        if binomial_p_value(mid, n, 1.0 / num_classes) <= fpr:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass
class _TriggerSource:
    images: torch.Tensor
    labels: torch.Tensor
    label: str
    cfg: ExperimentConfig | None = None
    reader: Any = None  # RunLogReader of a trigger log


def _trigger_source(path: str) -> _TriggerSource:
    from wmstudio.runlog import RunLogReader

    p = Path(path).expanduser()
    if p.is_file() and p.suffix in (".h5", ".hdf5"):
        reader = RunLogReader(p)
        try:
            ts = reader.trigger_set()
        except KeyError as exc:
            raise TriggerError(f"{p}: the log has no trigger set (the run stopped before it was built)") from exc
        return _TriggerSource(ts.images, ts.labels, f"{p} ({ts.scheme} x{len(ts)})", config_from_json(reader.config_json),
                              reader)
    if p.is_dir():
        from wmstudio.triggers import load_folder

        ts = load_folder(p)
        return _TriggerSource(ts.images, ts.labels, f"{p} (folder, {len(ts)} images)")
    raise TriggerError(f"{p}: expected a run log (.h5) or a folder of trigger images")


def _dims(ckpt: LoadedCheckpoint, src: _TriggerSource, cfg: ExperimentConfig | None) -> tuple[int, int, int]:
    info = ckpt.info
    if {"in_channels", "num_classes", "image_size"} <= set(info):
        return int(info["in_channels"]), int(info["num_classes"]), int(info["image_size"])
    if src.reader is not None:
        d = src.reader.data_info()
        return int(d["shape"][0]), int(d["num_classes"]), int(d["shape"][1])
    if cfg is not None:
        from wmstudio.preflight import probe_dims

        dims = probe_dims(cfg.data)
        if dims is not None:
            return dims.channels, dims.num_classes, dims.size
    raise ConfigError("--config", "cannot tell the model's input shape and class count: give a trigger run log, "
                                  "a wmstudio export, or --config with the data set")


def _build(args: dict[str, Any], ckpt: LoadedCheckpoint, cfg: ExperimentConfig | None,
           dims: tuple[int, int, int]) -> tuple[nn.Module, str]:
    from wmstudio.models import build_model

    c, k, s = dims
    if args.get("arch") or args.get("model_file"):
        if args.get("model_file") and not args.get("factory"):
            raise ConfigError("--factory", "--model-file is set: name the function or class that builds the model")
        model = build_model(args.get("arch") or "", c, k, s, args.get("options") or {}, args.get("model_file") or "",
                            args.get("factory") or "")
        return model, f"{args.get('model_file')}:{args.get('factory')}" if args.get("model_file") else str(args["arch"])
    if args.get("config") is None and "architecture" in ckpt.info:
        from wmstudio.export_model import build_from_metadata

        a = ckpt.info["architecture"]
        return build_from_metadata(ckpt.info), (f"{a.get('file')}:{a.get('factory')}" if a.get("file") else a.get("arch", "?")) \
            + ", from the file's metadata"
    if cfg is None:
        raise ConfigError("--arch", "the model's architecture is unknown: give --arch, --model-file/--factory, "
                                    "--config, or a trigger run log")
    from wmstudio.pipeline import build_from_config

    m = cfg.model
    return build_from_config(cfg, c, k, s), (f"{m.file}:{m.factory}" if m.file else m.arch) + ", from the config"


def _test_data(src: _TriggerSource, cfg: ExperimentConfig | None) -> tuple[Any, Normalizer | None, str]:
    """(test images, the normaliser the run used, description); images None when there is no test data."""
    from wmstudio.data import load_dataset

    if cfg is None:
        return None, None, "no test data: give --config, or a trigger run log"
    d = cfg.data
    if src.reader is not None and src.cfg is cfg:
        info = src.reader.data_info()
        norm = Normalizer(tuple(info["mean"]), tuple(info["std"]))
        data = load_dataset(d.dataset, d.root, False, d.image_size, d.cache_dir or None)
        test = data.test.subset(torch.from_numpy(src.reader.splits()["test"]), "test")
        return test, norm, f"{len(test)} test images of {data.name}, the log's split"
    from wmstudio.pipeline import load_split_data

    data, splits, _owner, norm = load_split_data(cfg, download=False)
    test = data.test.subset(splits.test, "test")
    return test, norm, f"{len(test)} test images of {data.name}"


def verify(model_path: str, trigger: str, fpr: float = 0.01, *, arch: str = "", options: dict[str, Any] | None = None,
           model_file: str = "", factory: str = "", config: str | None = None, trust_code: bool = False,
           null: str | None = None) -> Verification:
    """Trigger accuracy, p-value and decision for the model in ``model_path``, with its test accuracy."""
    if not 0.0 < fpr < 1.0:
        raise ConfigError("--fpr", f"expected a false-positive rate in (0, 1), got {fpr}")
    src = _trigger_source(trigger)
    cfg = load_config(config) if config else src.cfg
    ckpt = read_checkpoint(model_path, trust_code)
    dims = _dims(ckpt, src, cfg)
    model, described = _build({"arch": arch, "options": options, "model_file": model_file, "factory": factory,
                               "config": config}, ckpt, cfg, dims)
    notes = load_checkpoint(model, ckpt, strict=True)
    c, k, s = dims
    if tuple(src.images.shape[1:]) != (c, s, s):
        raise TriggerError(f"{trigger}: trigger images are {tuple(src.images.shape[1:])}, the model takes {(c, s, s)}")
    if int(src.labels.max()) >= k:
        raise TriggerError(f"{trigger}: trigger labels go up to {int(src.labels.max())}, the model has {k} classes")
    test, run_norm, test_note = None, None, ""
    try:
        test, run_norm, test_note = _test_data(src, cfg)
    except WmStudioError as exc:
        test_note = f"the test data could not be loaded ({exc})"
    norm_info = ckpt.info.get("normalization") or {}
    if norm_info.get("mean") and norm_info.get("std"):
        norm = Normalizer(tuple(norm_info["mean"]), tuple(norm_info["std"]))
    elif run_norm is not None:
        norm = run_norm
    else:
        raise ConfigError("--config", "the model's input normalisation is unknown (no export metadata, no run log): "
                                      f"give --config with the data set it was trained on ({test_note})")
    _, trig_acc = evaluate(model, src.images, src.labels, norm)
    n = len(src.labels)
    correct = int(round(trig_acc * n))
    test_acc = evaluate(model, test.images, test.labels, norm)[1] if test is not None else None
    v = Verification(str(model_path), f"{described}, {ckpt.format}", src.label, n, correct, k,
                     binomial_p_value(correct, n, 1.0 / k), fpr, needed_correct(n, k, fpr), test_acc, test_note, notes)
    if null:
        add_null(v, null)
    return v


def add_null(v: Verification, path: str) -> None:
    """Rank ``v``'s trigger accuracy among the null models in ``path`` (same trigger-set size and classes)."""
    from wmstudio.null_models import NullDistribution, empirical_p_value, empirical_threshold

    nd = NullDistribution.load(path)
    if nd.n_triggers != v.n or nd.num_classes != v.num_classes:
        raise ConfigError("--null", f"{path} was measured on {nd.n_triggers} triggers and {nd.num_classes} classes; "
                                    f"this trigger set has {v.n} triggers and the model {v.num_classes} classes")
    v.null_accs = [float(a) for a in nd.trigger_acc]
    v.null_p_value = empirical_p_value(v.correct, nd.correct)
    v.null_needed = empirical_threshold(nd.correct, v.fpr)
    v.null_file = str(path)
