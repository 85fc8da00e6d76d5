"""The stages of a run, in the order a run takes them: the one place that order is written.

Torch-free, for the engine (pipeline, sweeps, reports) and the app alike.
"""

from __future__ import annotations

STAGES = ("pretrain", "embed", "finetune", "extract", "attack", "restore")
EMBED_STAGES = ("pretrain", "embed")  # stage 1: the (clean, then) watermarked model
ATTACK_STAGES = ("finetune", "extract", "attack")  # stage 2: the attack the restore stage answers
RESTORE = "restore"  # stage 3
AFTER_EMBED = (*ATTACK_STAGES, RESTORE)  # what a sweep's attack run continues a shared watermarked model with

# the stages whose weights a stage starts from when a run begins with it (the plan's order:
# fine-tuning and extraction attack the watermarked model, restoration repairs the attacked one)
STARTS_FROM: dict[str, tuple[str, ...]] = {**dict.fromkeys(ATTACK_STAGES, ("embed",)), RESTORE: ATTACK_STAGES}
