"""Stage 2: the attack. Fine-tuning on the attacker's data (FTLL / FTAL / RTLL / RTAL), with the
owner's training data optionally mixed in (the mitigation)."""

from __future__ import annotations

import numpy as np
import torch

from wmstudio.data import load_dataset
from wmstudio.data.batches import BatchStream, Source
from wmstudio.data.tensorset import ImageTensors
from wmstudio.errors import ConfigError
from wmstudio.models import last_linear_name
from wmstudio.session import Session
from wmstudio.stages.training import StageHooks, train_stage


class OwnerStepHooks(StageHooks):
    """The mitigation as published: one extra step on an owner batch after every k-th fine-tuning batch."""

    def __init__(self, s: Session, every: int) -> None:
        self.s, self.every, self.extra_steps = s, every, 0
        f = s.cfg.finetune
        self.stream = BatchStream(s.owner_source(), f.batch_size, s.normalizer, s.generator,
                                  memory_format=s.memory_format)
        self.batches = iter(self.stream)

    def _next(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.stream)
            return next(self.batches)

    def after_step(self, step: int, opt: torch.optim.Optimizer) -> None:
        if self.every <= 0 or step % self.every:
            return
        x, y = self._next()
        loss = torch.nn.functional.cross_entropy(self.s.model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.extra_steps += 1


def subset_indices(pool: int, n: int, seed: int) -> np.ndarray:
    """The sorted indices of the ``n`` of ``pool`` images an attack uses, drawn with ``seed``."""
    return np.sort(np.random.default_rng([seed, 7]).choice(pool, n, replace=False))


def attacker_data(s: Session) -> ImageTensors:
    f = s.cfg.finetune
    if f.data == "attacker":
        pool = s.attacker
    elif f.data == "owner":
        pool = s.owner
    else:
        src = f.source
        ext = load_dataset(src.name, src.root or s.cfg.data.root, src.download, s.cfg.data.image_size,
                           s.cfg.data.cache_dir or None, s.cfg.data.channels)
        part = ext.train if src.split == "train" else ext.test
        if part.shape != s.owner.shape:
            raise ConfigError("finetune.source", f"{part.name} has images of shape {part.shape}, the model takes {s.owner.shape}")
        if part.num_classes > s.num_classes:
            raise ConfigError("finetune.source", f"{part.name} has {part.num_classes} classes, the model {s.num_classes}")
        pool = part.to(s.device)
    n = f.data_size if f.data_size > 0 else int(round(f.data_fraction * len(pool)))
    if n > len(pool):
        raise ConfigError("finetune.data_size", f"{n} images asked for, but the {f.data} data has {len(pool)}")
    if n < len(pool):
        pool = pool.subset(subset_indices(len(pool), n, f.data_seed if f.data_seed >= 0 else s.cfg.data.split_seed))
    if len(pool) == 0:
        raise ConfigError("finetune.data_fraction", "the attacker has no images to fine-tune on")
    return pool


def run_finetune(s: Session) -> dict[str, float]:
    f = s.cfg.finetune
    data = attacker_data(s)
    model = s.model
    head_name = last_linear_name(model)
    head = model.get_submodule(head_name)
    if f.variant.startswith("RT"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.cfg.run.seed + 101)
            head.reset_parameters()
    last_layer_only = f.variant.endswith("LL")
    params = list(head.parameters()) if last_layer_only else list(model.parameters())
    if last_layer_only:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
    extra = [(s.owner_source(), f.mix_owner_fraction)] if f.mix_owner_fraction > 0 else []
    stream = BatchStream(Source(data.images, data.labels, s.augment), f.batch_size, s.normalizer, s.generator, extra=extra, memory_format=s.memory_format)
    try:
        hooks = OwnerStepHooks(s, f.owner_step_every) if f.owner_step_every > 0 else None
        s.method_state = hooks  # type: ignore[attr-defined]
        return train_stage(s, "finetune", f, stream, drift_reference="watermarked", params=params,
                           frozen_features=last_layer_only, hooks=hooks)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
