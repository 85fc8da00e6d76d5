"""The experiment config: one schema for the CLI, the app and sweeps.

Configs are TOML (or JSON) files. Every field carries its help text, allowed values and range, so
that validation errors name the field (``finetune.lr: expected a number > 0, got -1``) and
``wmstudio config --example`` prints a complete, commented file generated from this schema.
The choices of a field that names an implementation (data set, trigger scheme, method, attack) are
the names its registry holds (``wmstudio.catalog``).

This module is the schema (the sections and their fields); checking a config is
``wmstudio.config_check``, reading and writing it ``wmstudio.config_io`` (``load_config``).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

from wmstudio import catalog

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - exercised on Python 3.10 only
    pass

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
        why: str = "", kinds: tuple[str, ...] = ()) -> Any:
    """A config field with its help text and constraints (``why``: the reason for ``max``; ``kinds``: the
    attack kinds the field is for, where it is not for all of them: the app's form shows it only for those)."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive, "why": why,
            "kinds": kinds}
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


NEURAL_CLEANSE = ("neural_cleanse",)


@dataclass
class AttackSection:
    """Which removal attack stage 2 runs. ``finetune`` keeps today's plan ([finetune] or [extract]); every other
    kind replaces the fine-tune stage with a stage named ``attack`` (finetune.enabled is then not used)."""

    kind: str = opt("finetune", "the attack: " + catalog.ATTACKS.described(), choices=catalog.ATTACKS.names())
    sparsity: float = opt(0.5, "prune: fraction of all conv/linear weights zeroed; channel_prune: fraction of each "
                               "conv layer's filters; fine_prune: fraction of the last conv layer's channels",
                          min=0.0, max=0.99, why="pruning every weight leaves no model",
                          kinds=("prune", "channel_prune", "fine_prune"))
    bits: int = opt(8, "quantize: bits per weight (symmetric, per output channel; 8 = int8, 4 = int4)", min=2, max=16,
                    why="16 bits is already float-like precision for these weights", kinds=("quantize",))
    noise_scale: float = opt(0.1, "noise: std of the Gaussian added to each weight tensor, relative to its RMS",
                             min=0.0, max=10.0, why="noise ten times the weights' size leaves nothing of the model",
                             kinds=("noise",))
    temperature: float = opt(4.0, "distill: softmax temperature of the teacher's soft labels (and the student's)",
                             min=0.0, min_exclusive=True, max=100.0, why="soft labels are flat beyond this",
                             kinds=("distill",))
    nc_steps: int = opt(300, "neural_cleanse: optimisation steps of the reversed trigger, per class", min=1,
                        max=100_000, why="each step is a pass over the clean batch for every class",
                        kinds=NEURAL_CLEANSE)
    nc_lr: float = opt(0.1, "neural_cleanse: Adam learning rate of the mask and pattern", min=0.0,
                       min_exclusive=True, max=MAX_LR, why=WHY_LR, kinds=NEURAL_CLEANSE)
    nc_lambda: float = opt(5.0, "neural_cleanse: weight of the mask's mean (its L1 norm per pixel; larger: smaller "
                                "triggers)", min=0.0, max=1000.0, why="a larger weight only shrinks the mask to nothing",
                           kinds=NEURAL_CLEANSE)
    nc_images: int = opt(200, "neural_cleanse: clean attacker images used to reverse the triggers", min=1,
                         max=MAX_TRIGGERS, why=WHY_TRIGGERS, kinds=NEURAL_CLEANSE)
    nc_stamp_fraction: float = opt(0.2, "neural_cleanse: fraction of the unlearning images stamped with the "
                                        "flagged class's reversed trigger (their true labels kept)", min=0.0, max=1.0,
                                  why="a fraction of the images cannot exceed all of them", kinds=NEURAL_CLEANSE)


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
