"""Starting weights for a model: the checkpoint loader, plus a classifier head for another class count.

A model pretrained on another task (an ImageNet torchvision model transferred to CIFAR-10) has a
head with another number of outputs. When that is the only difference and ``reinit_head`` is on,
everything else is loaded and the model keeps its freshly initialised head; the change is returned
so that the run reports it ("head fc re-initialised: 1000 -> 10 classes").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from wmstudio.errors import CheckpointError
from wmstudio.models.checkpoint import load_checkpoint, load_state_dict_file
from wmstudio.models.registry import HeadChange, checkpoint_head, head_change


@dataclass
class LoadResult:
    warnings: list[str] = field(default_factory=list)  # non-strict mismatches
    head: HeadChange | None = None  # set when the head was re-initialised

    def messages(self) -> list[str]:
        return ([self.head.message()] if self.head else []) + self.warnings


def load_pretrained(model: nn.Module, checkpoint: str | Path, strict: bool = True,
                    reinit_head: bool = True) -> LoadResult:
    """Load ``checkpoint`` into ``model`` (see module doc). Raises CheckpointError as the loader does."""
    try:
        return LoadResult(load_checkpoint(model, checkpoint, strict))
    except CheckpointError:
        if not reinit_head:
            raise
        change = head_change(model, load_state_dict_file(checkpoint))
        if change is None:
            raise
    with checkpoint_head(model, change):
        warnings = load_checkpoint(model, checkpoint, strict)
    return LoadResult(warnings, change)
