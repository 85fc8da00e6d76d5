"""Stage 3: restoration. Further training on the owner's training data alone, never the trigger set."""

from __future__ import annotations

from wmstudio.data.batches import BatchStream
from wmstudio.session import Session
from wmstudio.stages.training import PlateauRule, train_stage


def run_restore(s: Session) -> dict[str, float]:
    r = s.cfg.restore
    stream = BatchStream(s.owner_source(), r.batch_size, s.normalizer, s.generator, memory_format=s.memory_format)
    plateau = PlateauRule(r.patience, r.min_delta) if r.stop_on_plateau else None
    reference = "stolen" if "stolen" in s.references else "watermarked"  # after extraction: from the copy
    return train_stage(s, "restore", r, stream, drift_reference=reference, plateau=plateau)
