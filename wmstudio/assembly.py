"""One plan: a config turned into the live objects a run, a preview, a check or a reading of a log works on.

The one place that builds them; every caller takes them from here:

- the data set and its owner/attacker/test split with the normaliser: :func:`load_split` for a new run
  (the seeded split, the normaliser ``data.normalize`` chooses), :func:`split_from_log` for a recorded
  run (the log's split and normaliser); :func:`data_signature` for the data's shape without the data;
- the model: :func:`build_model` (the config's), :func:`log_model` (the one a run log's weights belong to);
- its starting weights: :func:`load_weights` (``model.checkpoint``, as the pre-flight read it);
- all three in a run's order: :func:`assemble` (the checkpoint checked before any data is decoded);
- the trigger set: :func:`make_trigger_set` (with :func:`trigger_params` and :func:`source_loader`);
- the memory format: :func:`memory_format`.

Callers: ``wmstudio.pipeline`` (a run and the trigger preview), ``wmstudio.models.fit_check`` (the
checkpoint check), ``wmstudio.verify`` and ``wmstudio.landscape.context``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from wmstudio.config import ExperimentConfig
from wmstudio.config_check import check_against_data
from wmstudio.data import load_dataset
from wmstudio.data.batches import Normalizer
from wmstudio.data.normalization import choose_normalizer
from wmstudio.data.splits import Splits, make_splits
from wmstudio.data.tensorset import DataPair, ImageTensors
from wmstudio.errors import RunLogError
from wmstudio.model_build import build_from_config
from wmstudio.models.checkpoint import LoadedCheckpoint
from wmstudio.models.code_trust import CodeOrigin
from wmstudio.models.declared import declared_normalization
from wmstudio.models.pretrained import LoadResult, load_pretrained
from wmstudio.preflight import preflight_checkpoint, probe_dims
from wmstudio.triggers import BuildContext, TriggerSet, build_trigger_set

if TYPE_CHECKING:
    from wmstudio.runlog_reader import RunLogReader


# ---------------------------------------------------------------- data

@dataclass
class SplitData:
    """The whole data set (CPU), its owner/attacker/test split, the owner's images and the run's normaliser."""

    data: DataPair
    splits: Splits
    owner: ImageTensors  # CPU
    normalizer: Normalizer

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def test(self) -> ImageTensors:
        return self.data.test.subset(self.splits.test, "test")

    def attacker(self) -> ImageTensors:
        return self.data.train.subset(self.splits.attacker, "attacker")


def _load_data(cfg: ExperimentConfig, download: bool) -> DataPair:
    d = cfg.data
    return load_dataset(d.dataset, d.root, download, d.image_size, d.cache_dir or None, d.channels)


def load_split(cfg: ExperimentConfig, download: bool = False) -> SplitData:
    """The data set, the split ``data.split_seed`` draws, the owner's images and the normaliser ``data.normalize``
    chooses (a declared one read from ``model.checkpoint`` or ``model.file`` when it is ``auto``)."""
    d = cfg.data
    declared = declared_normalization(cfg.model.checkpoint, cfg.model.file) if d.normalize == "auto" else None
    data = _load_data(cfg, download)
    splits = make_splits(len(data.train), len(data.test), seed=d.split_seed, attacker_fraction=d.attacker_fraction,
                         attacker_size=d.attacker_size, owner_size=d.owner_size, test_size=d.test_size)
    owner = data.train.subset(splits.owner, "owner")
    normalizer = choose_normalizer(d.normalize, owner.images, declared, d.mean, d.std)[0]
    return SplitData(data, splits, owner, normalizer)


def split_from_log(cfg: ExperimentConfig, reader: RunLogReader) -> SplitData:
    """The data set of the log's stored config ``cfg`` with the split and the normaliser the log records;
    RunLogError naming the log when it lacks them (a run stopped before its data was written)."""
    data = _load_data(cfg, False)
    try:
        recorded = reader.splits()
        info = reader.data_info()
    except KeyError as exc:
        raise missing_in_log(reader, exc) from exc
    splits = Splits(recorded["owner"], recorded["attacker"], recorded["test"], cfg.data.split_seed)
    return SplitData(data, splits, data.train.subset(splits.owner, "owner"),
                     Normalizer(tuple(info["mean"]), tuple(info["std"])))


def missing_in_log(reader: RunLogReader, exc: KeyError) -> RunLogError:
    """The error for a log that lacks a record a caller needs (``exc``: the KeyError naming it)."""
    return RunLogError(f"{reader.path}: the log lacks {exc} (was the run stopped before its data was written?)")


def data_signature(cfg: ExperimentConfig) -> tuple[int, int, int]:
    """(channels, side, classes) of the data set as a run would load it: from the pre-flight's probe
    (no image decoded), else by loading the data (an ImageFolder tree is decoded once and cached)."""
    dims = probe_dims(cfg.data)
    if dims is not None and dims.exact_size:
        return dims.channels, dims.size, dims.num_classes
    data = _load_data(cfg, False)
    (c, side, _), k = data.shape, data.num_classes
    return c, side, k


# ---------------------------------------------------------------- model and weights

def build_model(cfg: ExperimentConfig, shape: Sequence[int], num_classes: int,
                origin: CodeOrigin | None = None) -> nn.Module:
    """The untrained model ``cfg`` describes for images of ``shape`` (C, H, W) and ``num_classes`` classes.

    ``origin``: where ``cfg`` came from when the user did not write it (a run log's stored config);
    its ``model.file`` is then imported only if trusted (``wmstudio.models.code_trust``)."""
    c, h = int(shape[0]), int(shape[1])
    return build_from_config(cfg, c, num_classes, h, origin)


def log_model(cfg: ExperimentConfig, stage_names: Sequence[str], shape: Sequence[int], num_classes: int,
              origin: CodeOrigin | None = None) -> nn.Module:
    """The model a run log's weights belong to (``cfg``: the log's stored config, ``stage_names``: its stages):
    the config's, or ``extract.arch`` where the run stole a copy (extraction, or a distillation attack),
    which may be another architecture."""
    from wmstudio.models import build_model as build_named
    from wmstudio.models.registry import output_count

    model = build_model(cfg, shape, num_classes, origin)
    copied = "extract" in stage_names or ("attack" in stage_names and cfg.attack.kind == "distill")
    if copied and cfg.extract.arch:  # the stolen copy (and its restoration) may be another architecture
        x = cfg.extract
        model = build_named(x.arch, int(shape[0]), output_count(cfg.model.num_classes, num_classes), int(shape[1]),
                            x.options)
    return model


def load_weights(cfg: ExperimentConfig, model: nn.Module, ckpt: LoadedCheckpoint | None = None) -> LoadResult:
    """``model.checkpoint`` into ``model`` (nothing when none is set), the head replaced if it must be.

    ``ckpt``: the checkpoint as the pre-flight already read it (else it is read here)."""
    m = cfg.model
    if not m.checkpoint:
        return LoadResult()
    return load_pretrained(model, ckpt or m.checkpoint, m.strict, m.reinit_head, m.trust_checkpoint_code)


@dataclass
class Assembly:
    """What :func:`assemble` builds: the split data, the model (CPU, its starting weights loaded), what the
    loading said, and the checkpoint as read (None without one)."""

    split: SplitData
    model: nn.Module
    loaded: LoadResult
    checkpoint: LoadedCheckpoint | None


def assemble(cfg: ExperimentConfig, download: bool = False) -> Assembly:
    """Checkpoint, data, model and weights in a run's order: ``model.checkpoint`` read and checked against the
    model first (refused or unfitting checkpoints fail before any data is decoded), then the data and its
    split, the checks that need the data (``check_against_data``), the model, and its starting weights."""
    ckpt = preflight_checkpoint(cfg)
    split = load_split(cfg, download)
    check_against_data(cfg, split.shape, split.num_classes)
    model = build_model(cfg, split.shape, split.num_classes)
    loaded = load_weights(cfg, model, ckpt)
    return Assembly(split, model, loaded, ckpt)


def memory_format(cfg: ExperimentConfig, model: nn.Module | None = None) -> torch.memory_format:
    """Channels-last (``run.channels_last``) for the registry's conv nets; a user's model may .view() its
    input, so it keeps NCHW, unless ``model`` is given and has a Conv2d (for a caller that checks the
    format on a first batch and falls back to NCHW, as the landscape's evaluator does)."""
    if not cfg.run.channels_last:
        return torch.contiguous_format
    if cfg.model.file:
        conv = model is not None and any(isinstance(m, nn.Conv2d) for m in model.modules())
        return torch.channels_last if conv else torch.contiguous_format
    conv_net = cfg.model.arch != "vit" and not cfg.model.arch.startswith("torchvision:vit")
    return torch.channels_last if conv_net else torch.contiguous_format


# ---------------------------------------------------------------- trigger set

def trigger_params(cfg: ExperimentConfig) -> dict[str, object]:
    """The ``[trigger]`` settings a scheme's builder takes as keyword arguments."""
    t = cfg.trigger
    return {"label_mode": t.label_mode, "target_class": t.target_class, "eps": t.eps, "noise_std": t.noise_std,
            "stamp_fraction": t.stamp_fraction, "folder": t.folder, "source_class": t.source_class}


def source_loader(cfg: ExperimentConfig) -> Callable[[], ImageTensors]:
    """Loads the unrelated scheme's other data set, only when that scheme asks for it."""
    src, d = cfg.trigger.source, cfg.data

    def load_source() -> ImageTensors:
        pair = load_dataset(src.name, src.root or d.root, src.download, 0, d.cache_dir or None)
        return pair.train if src.split == "train" else pair.test

    return load_source


def make_trigger_set(cfg: ExperimentConfig, owner: ImageTensors, num_classes: int, model: nn.Module,
                     normalizer: Normalizer, device: torch.device | None = None) -> TriggerSet:
    """The trigger set ``[trigger]`` describes, made from the owner's images (CPU); ``model`` (on ``device``,
    default the CPU) is the one adversarial triggers are made against."""
    ctx = BuildContext(owner.shape, num_classes, owner, model, normalizer, device or torch.device("cpu"),
                       source_loader(cfg))
    t = cfg.trigger
    return build_trigger_set(t.scheme, ctx, t.size, t.seed, **trigger_params(cfg))
