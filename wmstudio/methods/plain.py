"""Plain backdoor training (Adi et al. 2018): owner data with the trigger set mixed into every batch."""

from __future__ import annotations

from wmstudio.methods.common import embed_stream
from wmstudio.session import Session
from wmstudio.stages.training import train_stage


def run(s: Session) -> dict[str, float]:
    return train_stage(s, "embed", s.cfg.embed, embed_stream(s), drift_reference="initial")
