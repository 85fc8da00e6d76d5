"""The removal attacks of stage 2 other than fine-tuning and extraction (``[attack] kind``).

One module per attack; each exposes ``run(s: Session) -> dict[str, float]`` which writes a stage
named ``attack`` to the run log with the same evaluation rows as fine-tuning (test and trigger
accuracy, drift from the watermarked model, p-value) and an ``attack_json`` attribute holding the
attack's parameters, the watermarked model's accuracies before it (``before``) and what its
mechanism reached (sparsity, bits, reversed trigger, ...). The restore stage follows as after
fine-tuning.
"""

from __future__ import annotations

from wmstudio.catalog import ATTACKS
from wmstudio.session import Session

STAGE = "attack"


def run_attack(s: Session) -> dict[str, float]:
    """The stage function ``[attack] kind`` registers (catalog.ATTACKS; only the chosen attack's module loads)."""
    return ATTACKS.get(s.cfg.attack.kind)(s)
