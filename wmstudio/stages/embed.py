"""Clean pre-training before the watermark is embedded (the embedding methods are in wmstudio.methods)."""

from __future__ import annotations

import dataclasses

from wmstudio.data.batches import BatchStream
from wmstudio.session import Session
from wmstudio.stages.training import train_stage


def run_pretrain(s: Session) -> dict[str, float]:
    """Clean training on the owner's data only: the model the adversarial triggers are made against."""
    e = s.cfg.embed
    t = dataclasses.replace(e, epochs=e.clean_epochs)
    stream = BatchStream(s.owner_source(), e.batch_size, s.normalizer, s.generator, memory_format=s.memory_format)
    return train_stage(s, "pretrain", t, stream, drift_reference="initial")
