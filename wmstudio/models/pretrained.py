"""Starting weights for a model: the checkpoint loader, plus a classifier head for another class count.

A model pretrained on another task (an ImageNet torchvision model transferred to CIFAR-10) has a
head with another number of outputs. When that is the only difference and ``reinit_head`` is on
(``model.reinit_head = true``; off by default, so a watermarked model is never silently changed),
everything else is loaded and the model keeps its freshly initialised head; the change is returned
so that the run reports it ("head fc re-initialised: 1000 -> 10 classes").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from wmstudio.errors import CheckpointError
from wmstudio.models.checkpoint import (
    LoadedCheckpoint,
    load_checkpoint,
    nonfinite_tensors,
    read_checkpoint,
)
from wmstudio.models.registry import HeadChange, checkpoint_head, head_change


@dataclass
class LoadResult:
    warnings: list[str] = field(default_factory=list)  # non-strict mismatches, trusted code
    head: HeadChange | None = None  # set when the head was re-initialised

    def messages(self) -> list[str]:
        return ([self.head.message()] if self.head else []) + self.warnings


def load_pretrained(model: nn.Module, checkpoint: str | Path | LoadedCheckpoint, strict: bool = True,
                    reinit_head: bool = False, trust_code: bool = False) -> LoadResult:
    """Load ``checkpoint`` (a path, or a checkpoint the pre-flight already read) into ``model``; see the
    module doc. The file is read once. Raises CheckpointError as the loader does."""
    ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else read_checkpoint(checkpoint, trust_code)
    bad = nonfinite_tensors(ckpt.tensors)
    if bad:  # named here, not later as a diverging loss blamed on the learning rate
        raise CheckpointError(f"{ckpt.source}: the weights are not finite (NaN or inf) in {len(bad)} tensor"
                              f"{'s' if len(bad) > 1 else ''}: {', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}; "
                              "a model cannot start from them")
    try:
        return LoadResult(load_checkpoint(model, ckpt, strict))
    except CheckpointError:
        if not reinit_head:
            raise
        change = head_change(model, ckpt.tensors)
        if change is None:
            raise
    with checkpoint_head(model, change):
        warnings = load_checkpoint(model, ckpt, strict)
    return LoadResult(warnings, change)
