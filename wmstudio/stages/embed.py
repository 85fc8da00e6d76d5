"""Stage 1: embed the watermark (optionally after clean pre-training)."""

from __future__ import annotations

import dataclasses

from wmstudio.data.batches import BatchStream, Source
from wmstudio.errors import TriggerError
from wmstudio.session import Session
from wmstudio.stages.training import train_stage


def run_pretrain(s: Session) -> dict[str, float]:
    """Clean training on the owner's data only: the model the adversarial triggers are made against."""
    e = s.cfg.embed
    t = dataclasses.replace(e, epochs=e.clean_epochs)
    stream = BatchStream(s.owner_source(), e.batch_size, s.normalizer, s.generator, memory_format=s.memory_format)
    return train_stage(s, "pretrain", t, stream, drift_reference="initial")


def run_embed(s: Session) -> dict[str, float]:
    """Training on the owner's data with the trigger set mixed into every batch."""
    if s.trigger_images is None or s.trigger_labels is None:
        raise TriggerError("embed: no trigger set was built")
    e = s.cfg.embed
    triggers = Source(s.trigger_images, s.trigger_labels, s.augment if e.augment_triggers else None)
    stream = BatchStream(s.owner_source(), e.batch_size, s.normalizer, s.generator, extra=[(triggers, e.trigger_fraction)], memory_format=s.memory_format)
    return train_stage(s, "embed", e, stream, drift_reference="initial")
