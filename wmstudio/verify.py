"""``wmstudio verify``: does a suspect model carry the owner's watermark?

The suspect's trigger outcomes (does it give trigger i its watermark label?) are tested three ways,
each an exact test (``wmstudio.metrics.verification``), and the watermark is declared present only
when every test run rejects its null hypothesis at the chosen false-positive rate:

1. **chance**: k of n triggers matched, against 1/num_classes per trigger (binomial upper tail);
2. **control**: against the suspect's own answers without the trigger, so that a model that merely
   leans towards the trigger labels (a distilled student, a model biased to the target class) does
   not pass. Where the trigger set carries control images (``TriggerSet.control_images``: the same
   source image without the trigger, or a matched clean image), an exact one-sided McNemar test on
   the pairs (trigger right and control wrong, against the reverse). Where it does not (older logs,
   trigger folders), a one-sided Fisher exact test of the trigger hits against the rate at which
   the suspect gives the trigger labels to clean test images whose true class differs (per trigger
   label, pooled with the labels' weights among the triggers);
3. **null models** (with ``null``, a file of ``wmstudio null-models``): the trigger accuracy ranked
   among models trained without the watermark, ``(1 + #{null >= k}) / (K + 1)``.

Some models cannot be verified at all; they are reported as such with the reason, never "present":
non-finite weights, a degenerate declared normalisation (non-finite, std below 1e-3 or above 1e3,
|mean| above 1e3, in [0, 1] pixel units), outputs that are not finite or do not depend on the input
(one class for every image), one class taking more than half of the test predictions, and no control
to test against (no control images and no clean test data).

The suspect model's architecture comes from, in order: ``--arch``/``--model-file``, ``--config``,
the metadata of a wmstudio export, the trigger log's config. A Python model file named by the
export's metadata or by the log's config is imported only with ``trust_code`` (``--trust``):
``wmstudio.models.code_trust``. Its normalisation: the export's metadata, else the log's recorded
mean/std, else the one the config fits on the owner's data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wmstudio.config import ExperimentConfig
from wmstudio.config_io import config_from_json, load_config
from wmstudio.data.batches import Normalizer
from wmstudio.errors import ConfigError, TriggerError, WmStudioError
from wmstudio.metrics import binomial_p_value
from wmstudio.metrics.collapse import COLLAPSE_MAJORITY
from wmstudio.metrics.verification import fisher_p_value, mcnemar_p_value
from wmstudio.models.checkpoint import (
    LoadedCheckpoint,
    load_checkpoint,
    nonfinite_tensors,
    read_checkpoint,
)
from wmstudio.models.code_trust import CodeOrigin, log_origin
from wmstudio.verdict import Verification, needed_correct  # noqa: F401 - needed_correct: part of this API

OPT_IN = ("rerun with --trust (the app: tick 'trust code these files name'), or name the architecture yourself "
          "(--arch, --model-file with --factory, or --config)")
MIN_STD, MAX_STD, MAX_MEAN = 1e-3, 1e3, 1e3  # a declared normalisation outside these is degenerate


@dataclass
class _TriggerSource:
    images: torch.Tensor
    labels: torch.Tensor
    label: str
    cfg: ExperimentConfig | None = None
    reader: Any = None  # RunLogReader of a trigger log
    control_images: torch.Tensor | None = None  # TriggerSet.control_images: image i is trigger i's control
    control_kind: str = ""  # "paired" | "matched" | ""


def _trigger_source(path: str) -> _TriggerSource:
    from wmstudio.runlog_reader import RunLogReader

    p = Path(path).expanduser()
    if p.is_file() and p.suffix in (".h5", ".hdf5"):
        reader = RunLogReader(p)
        try:
            ts = reader.trigger_set()
        except KeyError as exc:
            raise TriggerError(f"{p}: the log has no trigger set (the run stopped before it was built)") from exc
        return _TriggerSource(ts.images, ts.labels, f"{p} ({ts.scheme} x{len(ts)})", config_from_json(reader.config_json, reader.working_dir()),
                              reader, getattr(ts, "control_images", None), getattr(ts, "control_kind", ""))
    if p.is_dir():
        from wmstudio.triggers import load_folder

        ts = load_folder(p)
        return _TriggerSource(ts.images, ts.labels, f"{p} (folder, {len(ts)} images)", None, None,
                              getattr(ts, "control_images", None), getattr(ts, "control_kind", ""))
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
    trusted = bool(args.get("trust"))
    if args.get("config") is None and "architecture" in ckpt.info:
        from wmstudio.export_model import build_from_metadata

        a = ckpt.info["architecture"]
        origin = CodeOrigin("export metadata", str(ckpt.source), trusted, OPT_IN)
        model = build_from_metadata(ckpt.info, origin)
        return model, (f"{a.get('file')}:{a.get('factory')}" if a.get("file") else a.get("arch", "?")) \
            + ", from the file's metadata"
    if cfg is None:
        raise ConfigError("--arch", "the model's architecture is unknown: give --arch, --model-file/--factory, "
                                    "--config, or a trigger run log")
    from wmstudio.assembly import build_model as build_configured

    m = cfg.model
    # the trigger log's stored config is not the user's; a --config file is
    origin = None if args.get("config") else log_origin(args.get("trigger_log") or "", trusted, OPT_IN)
    return build_configured(cfg, (c, s, s), k, origin), \
        (f"{m.file}:{m.factory}" if m.file else m.arch) + ", from the config"


def _test_data(src: _TriggerSource, cfg: ExperimentConfig | None) -> tuple[Any, Normalizer | None, str]:
    """(test images, the normaliser the run used, description); images None when there is no test data."""
    from wmstudio.assembly import load_split, split_from_log

    if cfg is None:
        return None, None, "no test data: give --config, or a trigger run log"
    if src.reader is not None and src.cfg is cfg:
        split = split_from_log(cfg, src.reader)
        test = split.test()
        return test, split.normalizer, f"{len(test)} test images of {split.data.name}, the log's split"
    split = load_split(cfg)
    test = split.test()
    return test, split.normalizer, f"{len(test)} test images of {split.data.name}"


def normalization_problem(mean: Any, std: Any) -> str:
    """Why a declared normalisation (per-channel mean/std in [0, 1] pixel units) is degenerate, or ""."""
    try:
        m, sd = [float(x) for x in mean], [float(x) for x in std]
    except (TypeError, ValueError):
        return f"its mean/std are not lists of numbers (mean {mean!r:.60}, std {std!r:.60})"
    if not m or len(m) != len(sd):
        return f"it needs one mean and one std per channel, got {len(m)} and {len(sd)}"
    if not all(math.isfinite(x) for x in m + sd):
        return f"it is not finite (mean {m}, std {sd})"
    if any(not MIN_STD <= x <= MAX_STD for x in sd):
        return f"its std {sd} lies outside [{MIN_STD:g}, {MAX_STD:g}] (the inputs would be scaled to nothing or to infinity)"
    if any(abs(x) > MAX_MEAN for x in m):
        return f"its mean {m} lies outside [-{MAX_MEAN:g}, {MAX_MEAN:g}]"
    return ""


def _logits(model: nn.Module, images: torch.Tensor, norm: Normalizer, batch_size: int = 1000) -> torch.Tensor:
    """The model's outputs (float, CPU) on uint8 images, in eval and inference mode; restores its mode."""
    was_training = model.training
    model.eval()
    scale, shift = norm.tensors(images.device)
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                out.append(model(images[start:start + batch_size].float().mul_(scale).sub_(shift)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def output_problem(outputs: dict[str, torch.Tensor], num_classes: int) -> str:
    """Why a model's outputs cannot verify anything (not finite, the same for every input, one class for
    most of the test set), or "". ``outputs``: logits per image set ("trigger", "test", ...)."""
    for name, y in outputs.items():
        if len(y) and not bool(torch.isfinite(y).all()):
            bad = int((~torch.isfinite(y)).any(dim=1).sum())
            return f"the model's outputs are not finite (NaN or inf) on {bad} of {len(y)} {name} images"
    every = torch.cat([y for y in outputs.values() if len(y)])
    if len(every) > 1:
        spread = float((every - every[0]).abs().max())
        if spread <= 1e-6 * max(1.0, float(every[0].abs().max())):
            return f"the model's outputs are the same for every input ({len(every)} images): it ignores its input"
        preds = every.argmax(1)
        # on the trigger set alone one class everywhere is what a watermark with one target label gives
        beyond_triggers = any(len(y) for name, y in outputs.items() if name != "trigger")
        if beyond_triggers and bool((preds == preds[0]).all()):
            return f"the model gives class {int(preds[0])} to every one of {len(every)} images (constant predictions)"
    test = outputs.get("test")
    if test is not None and len(test):
        share = np.bincount(test.argmax(1).numpy(), minlength=num_classes) / len(test)
        top = int(share.argmax())
        if share[top] > COLLAPSE_MAJORITY:
            return (f"the model is collapsed: it gives class {top} to {share[top]:.0%} of the test images "
                    f"(limit {COLLAPSE_MAJORITY:.0%}), so its trigger answers cannot be told from its bias")
    return ""


def control_test(v: Verification, trig_pred: torch.Tensor, labels: torch.Tensor, control_pred: torch.Tensor | None,
                 control_kind: str, test_pred: torch.Tensor | None, test_labels: torch.Tensor | None) -> None:
    """Fill ``v``'s control test: paired McNemar where there are control images, else Fisher against the
    suspect's rate of giving the trigger labels to clean test images of other classes, else nothing."""
    hit = trig_pred == labels
    if control_pred is not None:
        ctrl = control_pred == labels
        b, c = int((hit & ~ctrl).sum()), int((~hit & ctrl).sum())
        v.control = ("the same source images without the trigger (paired)" if control_kind == "paired"
                     else "matched clean images whose class is not the trigger label" if control_kind == "matched"
                     else f"the trigger set's control images ({control_kind or 'unnamed'})")
        v.control_n, v.control_hits = len(ctrl), int(ctrl.sum())
        v.control_p_value = mcnemar_p_value(b, c)
        v.control_test = f"exact McNemar, one-sided: {b} pairs only the trigger matched, {c} only the control"
        return
    if test_pred is None or test_labels is None or not len(test_labels):
        v.control = "no control images in the trigger set and no clean test data to measure the model's bias"
        return
    hits = total = 0.0
    for label, count in zip(*np.unique(labels.numpy(), return_counts=True), strict=True):
        other = test_labels != int(label)
        hits += count * float((test_pred[other] == int(label)).sum())
        total += count * float(other.sum())
    n = len(labels)
    m, big_m = int(round(hits / n)), int(round(total / n))  # pooled with the labels' weights among the triggers
    if big_m == 0:
        v.control = "no clean test image of a class other than the trigger labels"
        return
    v.control = f"clean test images of other classes given the trigger labels ({len(test_labels)} test images)"
    v.control_n, v.control_hits = big_m, m
    v.control_p_value = fisher_p_value(v.correct, n, m, big_m)
    v.control_test = f"Fisher exact, one-sided: {v.correct}/{n} triggers against {m}/{big_m} clean images"


def verify(model_path: str, trigger: str, fpr: float = 0.01, *, arch: str = "", options: dict[str, Any] | None = None,
           model_file: str = "", factory: str = "", config: str | None = None, trust_code: bool = False,
           null: str | None = None) -> Verification:
    """Trigger accuracy, the tests, and the decision for the model in ``model_path``, with its test accuracy.

    ``trust_code``: allow code the files name or hold (a Python model file named by the export's
    metadata or the trigger log's config, a TorchScript archive, a full pickle); refused otherwise."""
    if not 0.0 < fpr < 1.0:
        raise ConfigError("--fpr", f"expected a false-positive rate in (0, 1), got {fpr}")
    src = _trigger_source(trigger)
    cfg = load_config(config) if config else src.cfg
    ckpt = read_checkpoint(model_path, trust_code)
    dims = _dims(ckpt, src, cfg)
    model, described = _build({"arch": arch, "options": options, "model_file": model_file, "factory": factory,
                               "config": config, "trust": trust_code, "trigger_log": trigger}, ckpt, cfg, dims)
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
    n = len(src.labels)
    v = Verification(str(model_path), f"{described}, {ckpt.format}", src.label, n, 0, k, 1.0, fpr,
                     needed_correct(n, k, fpr), None, test_note, notes)
    norm_info = ckpt.info.get("normalization") or {}
    if norm_info.get("mean") is not None and norm_info.get("std") is not None:
        norm_mean, norm_std, norm_from = norm_info["mean"], norm_info["std"], "the export metadata's normalisation"
    elif run_norm is not None:
        norm_mean, norm_std, norm_from = run_norm.mean, run_norm.std, "the normalisation the run log records"
    else:
        raise ConfigError("--config", "the model's input normalisation is unknown (no export metadata, no run log): "
                                      f"give --config with the data set it was trained on ({test_note})")
    bad = nonfinite_tensors(ckpt.tensors)
    if bad:
        v.measured = False
        v.unverifiable = (f"the model's weights are not finite (NaN or inf) in {len(bad)} tensor"
                          f"{'s' if len(bad) > 1 else ''}: {', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}")
        return v
    problem = normalization_problem(norm_mean, norm_std)
    if problem:
        v.measured = False
        v.unverifiable = f"{norm_from} is degenerate: {problem}"
        return v
    norm = Normalizer(tuple(float(x) for x in norm_mean), tuple(float(x) for x in norm_std))
    outputs = {"trigger": _logits(model, src.images, norm)}
    if src.control_images is not None:
        if tuple(src.control_images.shape) != tuple(src.images.shape):
            raise TriggerError(f"{trigger}: control images are {tuple(src.control_images.shape)}, "
                               f"the trigger images {tuple(src.images.shape)}")
        outputs["control"] = _logits(model, src.control_images, norm)
    if test is not None:
        outputs["test"] = _logits(model, test.images, norm)
    trig_pred = outputs["trigger"].argmax(1)
    v.correct = int((trig_pred == src.labels).sum())
    v.p_value = binomial_p_value(v.correct, n, 1.0 / k)
    if test is not None:
        v.test_acc = float((outputs["test"].argmax(1) == test.labels).float().mean()) if len(test.labels) else None
    if all(bool(torch.isfinite(y).all()) for y in outputs.values()):  # shown even when the model is unverifiable
        control_test(v, trig_pred, src.labels, outputs["control"].argmax(1) if "control" in outputs else None,
                     src.control_kind, outputs["test"].argmax(1) if test is not None else None,
                     test.labels if test is not None else None)
    v.unverifiable = output_problem(outputs, k)
    if not v.unverifiable and v.control_p_value is None:
        v.unverifiable = f"no control to tell the watermark from a bias towards the trigger labels: {v.control}"
    if null:  # shown beside the reason too
        add_null(v, null)
    return v


def add_null(v: Verification, path: str) -> None:
    """Rank ``v``'s trigger accuracy among the null models in ``path`` (same trigger-set size and classes)."""
    from wmstudio.null_distribution import NullDistribution, empirical_p_value, empirical_threshold

    nd = NullDistribution.load(path)
    if nd.n_triggers != v.n or nd.num_classes != v.num_classes:
        raise ConfigError("--null", f"{path} was measured on {nd.n_triggers} triggers and {nd.num_classes} classes; "
                                    f"this trigger set has {v.n} triggers and the model {v.num_classes} classes")
    v.null_accs = [float(a) for a in nd.trigger_acc]
    v.null_p_value = empirical_p_value(v.correct, nd.correct)
    v.null_needed = empirical_threshold(nd.correct, v.fpr)
    v.null_file = str(path)
