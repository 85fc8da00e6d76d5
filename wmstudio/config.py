"""The experiment config: one schema for the CLI, the app and sweeps.

Configs are TOML (or JSON) files. Every field carries its help text, allowed values and range, so
that validation errors name the field (``finetune.lr: expected a number > 0, got -1``) and
``wmstudio config --example`` prints a complete, commented file generated from this schema.
The choices of a field that names an implementation (data set, trigger scheme, method, attack) are
the names its registry holds (``wmstudio.catalog``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmstudio import catalog
from wmstudio.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

LABEL_MODES = ("auto", "target", "random", "random_wrong", "reached", "true", "random_other")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "step", "onecycle")
VARIANTS = ("FTAL", "FTLL", "RTAL", "RTLL")
PRECISIONS = ("fp32", "bf16")
CURVATURE_MODES = ("off", "stage_ends")
SEED_SCOPES = ("model", "all")
NORMALIZE_MODES = ("auto", "fit", "imagenet", "cifar10", "custom")

# Upper bounds that keep a config from allocating the machine away or never finishing. Each bound
# comes with the reason the error message gives. Whole numbers without a bound of their own stop
# at MAX_INT (32-bit: seeds, sizes and counts all fit; the app's spin boxes are 32-bit too).
MAX_INT = 2**31 - 1
MAX_BATCH = 65536
WHY_BATCH = "a batch is held on the device at once; larger batches allocate gigabytes"
MAX_EPOCHS = 100_000
WHY_EPOCHS = "a stage of more epochs would not finish"
MAX_LR = 100.0
WHY_LR = "larger learning rates diverge at once"
MAX_THREADS = 1024
WHY_THREADS = "more threads than any CPU has cores only add overhead; 0 uses one per core"
MAX_TRIGGERS = 100_000
WHY_TRIGGERS = "the trigger set is built, held in memory and evaluated at every evaluation"
MAX_IMAGE_SIZE = 1024
WHY_IMAGE_SIZE = "every image is held in memory as a size x size tensor"
MAX_FLOAT = 1e6
WHY_FLOAT = "a factor this large only overflows the computation"
MAX_CONFIG_BYTES = 10 * 2**20  # a config file larger than this is not a config


def opt(default: Any, help: str, *, choices: tuple[Any, ...] | None = None,
        min: float | None = None, max: float | None = None, min_exclusive: bool = False,
        why: str = "") -> Any:
    """A config field with its help text and constraints (``why``: the reason for ``max``)."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive, "why": why}
    if isinstance(default, (dict, list)) or dataclasses.is_dataclass(default):
        factory = default if callable(default) else (lambda d=default: type(d)(d))
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DatasetSpec:
    """A data set other than the main one (trigger source, attacker's external data)."""

    name: str = opt("mnist", "data set name", choices=catalog.DATASETS.names())
    root: str = opt("", "folder or archive holding it (empty: the main data set's root)")
    download: bool = opt(False, "download when missing (needs network)")
    split: str = opt("train", "which split to take images from", choices=("train", "test"))


@dataclass
class RunSection:
    name: str = opt("experiment", "a name for the run, stored in the log")
    seed: int = opt(0, "seed for model initialisation, data order and augmentation", min=0)
    seed_scope: str = opt("model", "what run.seed varies: model (initialisation, data order, augmentation; "
                                   "trigger.seed and data.split_seed as set) or all (also the trigger set and the "
                                   "split: trigger.seed = run.seed + 1, data.split_seed = run.seed, replacing the "
                                   "values set; the log records them)", choices=SEED_SCOPES)
    device: str = opt("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    eval_batch_size: int = opt(1000, "batch size for evaluation", min=1, max=MAX_BATCH, why=WHY_BATCH)
    record_trajectory: bool = opt(True, "store the flat weights at every evaluation (landscape trajectories)")
    trajectory_max_params: int = opt(5_000_000, "record trajectories only for models up to this many parameters "
                                                "(4 bytes each per evaluation in the log)", min=0, max=10**9,
                                        why="4 bytes a parameter per evaluation would fill the disk")
    channels_last: bool = opt(True, "channels-last memory layout for the registry's conv nets (faster on CPU and GPU)")
    threads: int = opt(0, "CPU threads for PyTorch (0: leave PyTorch's default)", min=0, max=MAX_THREADS,
                       why=WHY_THREADS)
    precision: str = opt("fp32", "arithmetic of the training steps: fp32, or bf16 autocast with fp32 master "
                                 "weights (about 1.4-1.9x faster where the CPU has AVX512-BF16/AMX or on CUDA); "
                                 "evaluations, trigger accuracy and verification always run in fp32",
                         choices=PRECISIONS)
    curvature: str = opt("off", "Hessian curvature of each stage's final model, stored in the log: off, or "
                                "stage_ends (top eigenvalues and trace of the clean loss and of the trigger loss "
                                "after every stage; costs Hessian-vector products, estimated before each)",
                         choices=CURVATURE_MODES)
    curvature_top_k: int = opt(1, "curvature: how many of the largest Hessian eigenvalues (Lanczos)", min=1, max=100,
                               why="each is found by Lanczos steps over the whole data")
    curvature_probes: int = opt(10, "curvature: Hutchinson probes for the Hessian's trace (0: no trace)", min=0,
                                max=10_000, why="each probe is one Hessian-vector product over the images")
    curvature_images: int = opt(1000, "curvature: test images of the clean loss (0: all; the trigger loss uses the "
                                      "whole trigger set)", min=0, max=10**7, why="more images than any test set")


@dataclass
class DataSection:
    dataset: str = opt("digits", "digits is built in (no download); torchvision names read from root", choices=catalog.DATASETS.names())
    root: str = opt("", "data folder, ImageFolder tree (train/<class>/*, test/<class>/*) or .tar/.tar.gz of one")
    download: bool = opt(False, "download a torchvision data set when missing (needs network)")
    image_size: int = opt(0, "resize every image to this side, any data set (0: keep their size; ImageFolder: "
                             "the most common size)", min=0, max=MAX_IMAGE_SIZE, why=WHY_IMAGE_SIZE)
    channels: int = opt(0, "convert images to this many channels: 3 repeats grey images (for ImageNet models), "
                           "1 averages colour ones (0: keep)", min=0, max=3,
                         why="images have 1 (grey) or 3 (colour) channels")
    normalize: str = opt("auto", "input normalisation: auto (what the checkpoint or model file declares, else fit), "
                                 "fit (the owner data's own mean/std), imagenet, cifar10, or custom (mean/std below)",
                         choices=NORMALIZE_MODES)
    mean: list[float] = opt([], "per-channel mean in [0,1] pixel units (normalize = custom)")
    std: list[float] = opt([], "per-channel std in [0,1] pixel units, each > 0 (normalize = custom)")
    split_seed: int = opt(0, "seed of the owner/attacker/test split", min=0)
    owner_size: int = opt(0, "images in the owner's training data (0: all not given to the attacker)", min=0)
    attacker_fraction: float = opt(0.3, "fraction of the training split held out as the attacker's data", min=0.0, max=0.95,
                                   why="the owner keeps at least 5% of the training split to train on")
    attacker_size: int = opt(0, "attacker's images (overrides attacker_fraction when > 0)", min=0)
    test_size: int = opt(0, "test images used for evaluation (0: the whole test split)", min=0)
    augment: bool = opt(True, "random crop with padding and horizontal flip during training")
    crop_padding: int = opt(-1, "padding of the random crop (-1: 1/8 of the image side)", min=-1, max=256,
                            why="every training batch is padded by this much on each side")
    flip: bool = opt(True, "random horizontal flips (turn off for digits and text)")
    cache_dir: str = opt("", "where decoded ImageFolder tensors are cached (empty: ~/.cache/wmstudio)")


@dataclass
class ModelSection:
    arch: str = opt("small_cnn", "registry name (see `wmstudio models`), or torchvision:<name>")
    checkpoint: str = opt("", "start from these weights: .pt/.pth state_dict, .safetensors, TorchScript, "
                                  "or a stage of an earlier run log (run.h5:embed)")
    file: str = opt("", "a Python file defining your own model (used with factory)")
    factory: str = opt("", "name of the function or class in `file` that builds the model")
    strict: bool = opt(True, "refuse a checkpoint with missing or unexpected keys")
    trust_checkpoint_code: bool = opt(False, "let a TorchScript archive or full pickle run its code on load (only for files you trust; recorded in the log)")
    num_classes: int = opt(0, "outputs of the classifier head (0: the data set's class count)", min=0,
                           max=MAX_INT, why="larger whole numbers are not meaningful here")
    reinit_head: bool = opt(False, "when only the checkpoint's classifier head has another class count, load the "
                                   "rest and re-initialise the head (reported); false: refuse such a checkpoint")
    options: dict[str, Any] = opt({}, "extra keyword arguments for the model factory")


@dataclass
class TriggerSection:
    scheme: str = opt("abstract", "how the trigger images are made", choices=catalog.TRIGGER_SCHEMES.names())
    size: int = opt(100, "number of trigger images", min=1, max=MAX_TRIGGERS, why=WHY_TRIGGERS)
    seed: int = opt(1, "seed the trigger set is built from", min=0)
    label_mode: str = opt("auto", "labels: target (one class), random (per sample), or for adversarial "
                          "random_wrong / reached / true / random_other; auto picks the scheme's usual", choices=LABEL_MODES)
    target_class: int = opt(0, "the class single-label triggers are relabelled to", min=0)
    source_class: int = opt(-1, "content/noise/adversarial: stamp images of this class only (-1: any but the "
                                "target; EWE's source class)", min=-1)
    eps: float = opt(0.08, "FGSM step in [0,1] pixel units (adversarial)", min=0.0, max=1.0,
                     why="pixels are in [0, 1]: a larger step only saturates them")
    noise_std: float = opt(0.3, "std of the fixed noise pattern in [0,1] pixel units (noise)", min=0.0, max=100.0,
                           why="pixels are in [0, 1]; far larger noise only saturates them")
    stamp_fraction: float = opt(0.35, "side of the stamp as a fraction of the image side (content)", min=0.05, max=1.0,
                                why="the stamp cannot be larger than the image")
    folder: str = opt("", "folder of trigger images: labels.csv (file,label) or <label>/<image> (folder)")
    source: DatasetSpec = opt(DatasetSpec, "images of another data set (unrelated)")


@dataclass
class TrainSection:
    enabled: bool = opt(True, "run this stage")
    epochs: int = opt(5, "passes over the stage's training data", min=0, max=MAX_EPOCHS, why=WHY_EPOCHS)
    lr: float = opt(0.01, "learning rate", min=0.0, min_exclusive=True, max=MAX_LR, why=WHY_LR)
    optimizer: str = opt("sgd", "optimiser", choices=OPTIMIZERS)
    momentum: float = opt(0.9, "SGD momentum", min=0.0, max=1.0,
                          why="a momentum above 1 makes every step grow without bound")
    weight_decay: float = opt(5e-4, "L2 weight decay", min=0.0, max=100.0, why="it would drive every weight to zero")
    scheduler: str = opt("cosine", "learning-rate schedule over the stage (onecycle: linear warm-up from lr/25 over "
                                   "the first 15% of steps, then cosine to 0)", choices=SCHEDULERS)
    step_size: int = opt(10, "epochs between decays (step scheduler)", min=1, max=MAX_EPOCHS, why=WHY_EPOCHS)
    gamma: float = opt(0.1, "decay factor (step scheduler)", min=0.0, max=1.0,
                       why="a factor above 1 would raise the learning rate at every decay")
    batch_size: int = opt(128, "training batch size", min=1, max=MAX_BATCH, why=WHY_BATCH)
    label_smoothing: float = opt(0.0, "label smoothing of the cross-entropy on training batches (plain training "
                                      "loss; the methods' extra terms are unsmoothed)", min=0.0, max=0.5,
                                  why="beyond 0.5 the true class is no longer the most likely target")
    eval_every_steps: int = opt(0, "also evaluate every N steps (0: once per epoch)", min=0)


@dataclass
class EmbedSection(TrainSection):
    epochs: int = opt(20, "epochs of training on owner data mixed with the trigger set", min=0, max=MAX_EPOCHS,
                      why=WHY_EPOCHS)
    lr: float = opt(0.05, "learning rate", min=0.0, min_exclusive=True, max=MAX_LR, why=WHY_LR)
    clean_epochs: int = opt(0, "epochs of clean training first (stage 'pretrain'; needed by adversarial "
                            "triggers when no checkpoint is given)", min=0, max=MAX_EPOCHS, why=WHY_EPOCHS)
    trigger_fraction: float = opt(0.2, "fraction of each batch drawn from the trigger set", min=0.0, max=0.9,
                                   why="at least 10% of each batch stays clean training data")
    augment_triggers: bool = opt(False, "apply the training augmentation to trigger images too")
    method: str = opt("plain", "how the watermark is embedded: " + catalog.METHODS.described(),
                      choices=catalog.METHODS.names())
    cert_warmup_epochs: int = opt(2, "certified: epochs of plain training before the robust passes", min=0,
                                  max=MAX_EPOCHS, why=WHY_EPOCHS)
    cert_levels: int = opt(21, "certified: noise levels sigma = step * j, j = 0 .. levels-1", min=1, max=1000,
                           why="every level is a forward and backward pass per robust step")
    cert_sigma_step: float = opt(0.05, "certified: step between noise levels (relative to each tensor's RMS)", min=0.0)
    cert_draws: int = opt(50, "certified: Gaussian weight-noise draws averaged per level", min=1, max=100_000,
                          why="every draw is a pass over the trigger set")
    cert_every_steps: int = opt(0, "certified: also run the robust pass every N training steps after the warm-up "
                                   "(0: once per epoch, at its start)", min=0)
    cert_lr_scale: float = opt(1.0, "certified: learning-rate factor of the robust steps (below 1 where an epoch has "
                                    "few clean steps to balance them, e.g. on the built-in digits)", min=0.0)
    cert_sigma: float = opt(0.5, "certified: sigma of the smoothed model used for verification", min=0.0,
                            min_exclusive=True)
    rowback_plain_epochs: int = opt(5, "rowback: plain epochs before the rotating-freeze epochs", min=0,
                                    max=MAX_EPOCHS, why=WHY_EPOCHS)
    rowback_groups: list[str] = opt([], "rowback: layer groups to rotate (module names; join several with +); "
                                        "empty: the model's blocks, each with its normalisation layer")
    app_eps: float = opt(0.02, "app: size of the adversarial weight perturbation, relative L2 per layer", min=0.0)
    app_alpha: float = opt(1.0, "app: weight of the trigger loss at the perturbed weights", min=0.0)
    ewe_temperature: float = opt(0.5, "ewe: temperature of the soft nearest neighbour loss", min=0.0,
                                 min_exclusive=True)
    ewe_weight: float = opt(0.5, "ewe: weight of the soft nearest neighbour term", min=0.0)
    ewe_target_class: int = opt(-1, "ewe: the class trigger samples are entangled with (-1: trigger.target_class)",
                                min=-1)


@dataclass
class FinetuneSection(TrainSection):
    lr: float = opt(0.05, "learning rate of the attack", min=0.0, min_exclusive=True, max=MAX_LR, why=WHY_LR)
    variant: str = opt("FTAL", "FT/RT: fine-tune or re-initialise the last layer; LL/AL: train last or all layers", choices=VARIANTS)
    data: str = opt("attacker", "the attacker's data: the held-out split, the owner's data, or external", choices=("attacker", "owner", "external"))
    data_fraction: float = opt(1.0, "fraction of that data used", min=0.0, max=1.0, min_exclusive=True,
                                why="a fraction of the data cannot exceed all of it")
    data_size: int = opt(0, "images used (overrides data_fraction when > 0)", min=0)
    data_seed: int = opt(-1, "seed of the draw of those images from the pool when fewer than all are used (-1: "
                             "data.split_seed; set it per seed of a comparison whose split the base model fixes)",
                         min=-1)
    source: DatasetSpec = opt(DatasetSpec, "the external data set (data = external)")
    mix_owner_fraction: float = opt(0.0, "the mitigation: fraction of each batch from the owner's training data", min=0.0, max=0.9,
                                      why="at least 10% of each batch stays the attacker's own data")
    owner_step_every: int = opt(0, "the mitigation as published: one extra step on an owner batch after every "
                                   "k-th fine-tuning batch (k = 2 in the paper; 0 = off)", min=0)


@dataclass
class ExtractSection(TrainSection):
    enabled: bool = opt(False, "model extraction instead of fine-tuning: train a fresh copy on the labels the "
                               "watermarked model predicts")
    epochs: int = opt(15, "epochs of training the copy", min=0, max=MAX_EPOCHS, why=WHY_EPOCHS)
    lr: float = opt(0.05, "learning rate of the copy's training", min=0.0, min_exclusive=True, max=MAX_LR,
                    why=WHY_LR)
    arch: str = opt("", "the copy's architecture (empty: the same as the watermarked model)")
    options: dict[str, Any] = opt({}, "model options of the copy's architecture")
    data: str = opt("attacker", "the images the attacker queries", choices=("attacker", "owner"))


@dataclass
class AttackSection:
    """Which removal attack stage 2 runs. ``finetune`` keeps today's plan ([finetune] or [extract]); every other
    kind replaces the fine-tune stage with a stage named ``attack`` (finetune.enabled is then not used)."""

    kind: str = opt("finetune", "the attack: " + catalog.ATTACKS.described(), choices=catalog.ATTACKS.names())
    sparsity: float = opt(0.5, "prune: fraction of all conv/linear weights zeroed; channel_prune: fraction of each "
                               "conv layer's filters; fine_prune: fraction of the last conv layer's channels",
                          min=0.0, max=0.99, why="pruning every weight leaves no model")
    bits: int = opt(8, "quantize: bits per weight (symmetric, per output channel; 8 = int8, 4 = int4)", min=2, max=16,
                    why="16 bits is already float-like precision for these weights")
    noise_scale: float = opt(0.1, "noise: std of the Gaussian added to each weight tensor, relative to its RMS",
                             min=0.0, max=10.0, why="noise ten times the weights' size leaves nothing of the model")
    temperature: float = opt(4.0, "distill: softmax temperature of the teacher's soft labels (and the student's)",
                             min=0.0, min_exclusive=True, max=100.0, why="soft labels are flat beyond this")
    nc_steps: int = opt(300, "neural_cleanse: optimisation steps of the reversed trigger, per class", min=1,
                        max=100_000, why="each step is a pass over the clean batch for every class")
    nc_lr: float = opt(0.1, "neural_cleanse: Adam learning rate of the mask and pattern", min=0.0,
                       min_exclusive=True, max=MAX_LR, why=WHY_LR)
    nc_lambda: float = opt(5.0, "neural_cleanse: weight of the mask's mean (its L1 norm per pixel; larger: smaller "
                                "triggers)", min=0.0, max=1000.0, why="a larger weight only shrinks the mask to nothing")
    nc_images: int = opt(200, "neural_cleanse: clean attacker images used to reverse the triggers", min=1,
                         max=MAX_TRIGGERS, why=WHY_TRIGGERS)
    nc_stamp_fraction: float = opt(0.2, "neural_cleanse: fraction of the unlearning images stamped with the "
                                        "flagged class's reversed trigger (their true labels kept)", min=0.0, max=1.0,
                                  why="a fraction of the images cannot exceed all of them")


@dataclass
class RestoreSection(TrainSection):
    lr: float = opt(0.01, "learning rate of restoration (owner's data only, never the triggers)", min=0.0,
                    min_exclusive=True, max=MAX_LR, why=WHY_LR)
    stop_on_plateau: bool = opt(False, "stop when trigger accuracy stops improving")
    patience: int = opt(2, "evaluations without improvement before stopping", min=1)
    min_delta: float = opt(0.005, "smallest trigger-accuracy gain that counts as improvement", min=0.0, max=1.0,
                           why="accuracies lie in [0, 1]")


@dataclass
class ExperimentConfig:
    run: RunSection = opt(RunSection, "the run as a whole")
    data: DataSection = opt(DataSection, "data set and the owner / attacker / test split")
    model: ModelSection = opt(ModelSection, "architecture and starting weights")
    trigger: TriggerSection = opt(TriggerSection, "the watermark's trigger set")
    embed: EmbedSection = opt(EmbedSection, "stage 1: embed the watermark")
    finetune: FinetuneSection = opt(FinetuneSection, "stage 2: the attack, fine-tuning on the attacker's data")
    extract: ExtractSection = opt(ExtractSection, "stage 2 (alternative attack): model extraction")
    attack: AttackSection = opt(AttackSection, "stage 2: which removal attack runs (finetune: the sections above)")
    restore: RestoreSection = opt(RestoreSection, "stage 3: restoration on the owner's training data alone")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self, comments: bool = True) -> str:
        return to_toml(self, comments=comments)


# ---------------------------------------------------------------- parsing and validation

def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_number(path: str, value: Any, tp: type) -> Any:
    """Whole numbers (an integral float such as ``3.0`` counts) and finite numbers; bools are not numbers."""
    if tp is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) <= MAX_INT:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected a whole number, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"expected a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        raise ConfigError(path, f"expected a finite number, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(path, f"expected a finite number, got {value!r}")
    return value


def _check_value(path: str, value: Any, tp: Any, meta: dict[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}")
    elif tp in (int, float):
        value = _check_number(path, value, tp)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {value!r}")
    elif typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table of key = value, got {value!r}")
        return dict(value)
    elif typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp) or (str,)
        if item is float:  # numbers; the app's form hands list elements over as text
            if not isinstance(value, list):
                raise ConfigError(path, f"expected a list of numbers, got {value!r}")
            return [_check_number(path, _number(path, v), float) for v in value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(path, f"expected a list of strings, got {value!r}")
        return list(value)
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(path, f"expected one of {', '.join(map(str, choices))}; got {value!r}")
    if tp not in (int, float):
        return value
    lo, hi, why = meta.get("min"), meta.get("max"), meta.get("why") or ""
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        op = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(path, f"expected a number {op} {lo}, got {value!r}")
    if hi is None:
        hi, why = (MAX_INT, "larger whole numbers are not meaningful here") if tp is int else (MAX_FLOAT, WHY_FLOAT)
    if value > hi:
        kind, bound = ("a whole number", str(hi)) if tp is int else ("a number", f"{hi:g}")
        raise ConfigError(path, f"expected {kind} <= {bound}{f' ({why})' if why else ''}, got {value!r}")
    return value


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key, type and range."""
    if not isinstance(data, dict):
        raise ConfigError(path or "config", f"expected a table, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"{path}.{key}" if path else key, f"unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        sub = f"{path}.{name}" if path else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, data[name], sub)
        else:
            kwargs[name] = _check_value(sub, data[name], tp, dict(f.metadata))
    return cls(**kwargs)


def derived_seeds(run_seed: int) -> tuple[int, int]:
    """(trigger.seed, data.split_seed) that run.seed_scope = "all" derives from ``run_seed``: run seed 0 gives the
    defaults (1, 0), so a sweep over run seeds 0, 1, 2 starts from the single run's trigger set and split."""
    return run_seed + 1, run_seed


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Cross-field checks that a single field cannot express, and the seeds run.seed_scope = "all" derives
    (written into the config itself, so the log's config records the seeds the run used)."""
    if cfg.run.seed_scope == "all":
        if cfg.run.seed >= MAX_INT:
            raise ConfigError("run.seed", f"expected a whole number < {MAX_INT} with seed_scope = \"all\" "
                                          f"(trigger.seed = run.seed + 1), got {cfg.run.seed}")
        cfg.trigger.seed, cfg.data.split_seed = derived_seeds(cfg.run.seed)
    if cfg.model.checkpoint.startswith("base:"):  # a shipped base model: its file, checked against its card
        from wmstudio.base_models import resolve

        cfg.model.checkpoint = str(resolve(cfg.model.checkpoint))
    if cfg.trigger.scheme == "adversarial" and cfg.embed.enabled and not cfg.model.checkpoint \
            and cfg.embed.clean_epochs == 0:
        raise ConfigError("embed.clean_epochs", "adversarial triggers are made against a trained clean "
                          "model: set embed.clean_epochs > 0 or give model.checkpoint")
    if cfg.trigger.scheme == "folder" and not cfg.trigger.folder:
        raise ConfigError("trigger.folder", "the folder scheme needs a folder of images")
    if cfg.model.file and not cfg.model.factory:
        raise ConfigError("model.factory", "model.file is set: name the function or class that builds the model")
    if cfg.extract.enabled and cfg.finetune.enabled:
        raise ConfigError("extract.enabled", "one attack per run: disable finetune (finetune.enabled = false) "
                                             "to run model extraction")
    if cfg.extract.enabled and cfg.attack.kind != "finetune":
        raise ConfigError("attack.kind", f"one attack per run: {cfg.attack.kind!r} replaces the attack stage; "
                                         "disable extract (extract.enabled = false)")
    if catalog.DATASETS.get(cfg.data.dataset).needs_root and not cfg.data.root:
        raise ConfigError("data.root", f"the {cfg.data.dataset} data set needs a folder or archive path")
    _check_normalization(cfg.data)
    from wmstudio.model_options import check_options  # the registry models' own option tables

    if not cfg.model.file:
        check_options(cfg.model.arch, cfg.model.options, "model.options")
    if cfg.extract.arch:
        check_options(cfg.extract.arch, cfg.extract.options, "extract.options")
    return cfg


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def check_against_data(cfg: ExperimentConfig, shape: tuple[int, int, int], num_classes: int,
                       budget: int | None = None) -> None:
    """Checks that need the data set: the memory a batch and the trigger set take at its image shape
    (as floats on the device), and class indices. Run before anything is written."""
    from wmstudio.memory import gib, memory_budget

    budget = budget or memory_budget()
    c, h, w = shape
    per_image = 4 * c * h * w
    sizes = [("run.eval_batch_size", cfg.run.eval_batch_size), ("trigger.size", cfg.trigger.size)]
    sizes += [(f"{name}.batch_size", getattr(cfg, name).batch_size) for name in ("embed", "finetune", "extract", "restore")
              if getattr(cfg, name).enabled]
    for path, n in sizes:
        if n * per_image > budget:
            raise ConfigError(path, f"{n} images of {c}x{h}x{w} take {gib(n * per_image)} as floats on the device, "
                                    f"more than the {gib(budget)} allowed (half of this machine's memory)")
    if cfg.embed.method == "ewe" and cfg.embed.ewe_target_class >= num_classes:
        raise ConfigError("embed.ewe_target_class", f"{cfg.embed.ewe_target_class} is not a class of this data set "
                                                    f"(0..{num_classes - 1}, or -1)")


def _number(path: str, v: Any) -> float:
    """A list element as a float (the app's form hands list elements over as text)."""
    try:
        if isinstance(v, bool):
            raise ValueError
        return float(v)
    except (TypeError, ValueError):
        raise ConfigError(path, f"expected numbers, got {v!r}") from None


def _check_normalization(d: DataSection) -> None:
    """data.channels in 0/1/3; data.mean / data.std: numbers, as many of each, std > 0, only with normalize = custom."""
    if d.channels not in (0, 1, 3):
        raise ConfigError("data.channels", f"expected 0 (keep), 1 or 3, got {d.channels}")
    if d.normalize != "custom":
        for name in ("mean", "std"):
            if getattr(d, name):
                raise ConfigError(f"data.{name}", f"only used with data.normalize = \"custom\" (it is {d.normalize!r})")
        return
    for name in ("mean", "std"):
        values = getattr(d, name)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"data.{name}", "normalize = \"custom\" needs a list of per-channel values, "
                              "e.g. [0.485, 0.456, 0.406]")
        setattr(d, name, [_number(f"data.{name}", v) for v in values])
    if len(d.mean) != len(d.std):
        raise ConfigError("data.std", f"{len(d.std)} values but data.mean has {len(d.mean)}: give one per channel")
    if any(v <= 0 for v in d.std):
        raise ConfigError("data.std", f"every value must be > 0, got {d.std}")


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` with value read as a TOML value (falls back to a plain string)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise ConfigError(f"--set {text!r}", "an override must look like section.key=value "
                                              "(e.g. --set finetune.lr=0.05)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, KeyError):
        value = raw.strip()
    return key, value


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``section.key`` in nested config data, creating sections on the way."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(key, f"'{part}' is a value, not a section")
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        set_path(data, *parse_override(text))
    return data


def read_config_data(path: str | Path) -> dict[str, Any]:
    """A config file's data: TOML, or JSON by its suffix. Every failure names the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", f"config file not found: {p}")
    kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"{p}: {p.stat().st_size} bytes is too large for a config file "
                                  f"(at most {MAX_CONFIG_BYTES // 2**20} MiB)")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"{p}: cannot read the config file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError("", f"{p} is not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at line {line}); "
                              f"a config is {kind} text in UTF-8") from None
    try:
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("", f"{p} is not valid {kind}: {exc}") from None
    except RecursionError:
        raise ConfigError("", f"{p} is not a usable {kind} config: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError("", f"{p}: expected a {kind} table of sections at the top, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a TOML/JSON config (or plain data), apply ``key=value`` overrides, validate."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError("config", f"expected a table of sections, got {type(data).__name__}")
    raw = dict(data) if data is not None else (read_config_data(path) if path else {})
    raw = apply_overrides(raw, overrides or [])
    try:
        return validate(from_dict(ExperimentConfig, raw))
    except ConfigError as exc:
        if path:
            raise ConfigError(exc.field, f"{exc.args[0].split(': ', 1)[-1]} (in {path})") from None
        raise


def config_from_json(text: str) -> ExperimentConfig:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError("config", f"the stored config is not valid JSON ({exc})") from None
    return validate(from_dict(ExperimentConfig, data))


# ---------------------------------------------------------------- writing

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _emit(obj: Any, header: str, out: list[str], comments: bool, help_text: str = "") -> None:
    scalars: list[tuple[dataclasses.Field, Any]] = []
    tables: list[tuple[dataclasses.Field, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        (tables if dataclasses.is_dataclass(value) or isinstance(value, dict) else scalars).append((f, value))
    if header:
        if out:
            out.append("")
        if comments and help_text:
            out.append(f"# {help_text}")
        out.append(f"[{header}]")
    for f, value in scalars:
        line = f"{f.name} = {_toml_value(value)}"
        if comments:
            meta = f.metadata
            extra = f" ({' | '.join(map(str, meta['choices']))})" if meta.get("choices") else ""
            line = f"{line:<32} # {meta.get('help', '')}{extra}"
        out.append(line)
    for f, value in tables:
        sub = f"{header}.{f.name}" if header else f.name
        if isinstance(value, dict):
            if out:
                out.append("")
            if comments:
                out.append(f"# {f.metadata.get('help', '')}")
            out.append(f"[{sub}]")
            out.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        else:
            _emit(value, sub, out, comments, f.metadata.get("help", ""))


def to_toml(cfg: Any, comments: bool = True) -> str:
    out: list[str] = []
    if comments:
        out += ["# Watermark Studio experiment config.",
                "# Run it: wmstudio run THIS.toml --out run.h5   (override: --set finetune.lr=0.1)"]
    _emit(cfg, "", out, comments)
    return "\n".join(out) + "\n"


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    from wmstudio.safe_files import write_text

    write_text(path, to_toml(cfg), overwrite=True)  # never through a link (the app's save dialog asks first)
