"""What the stages of one run share: model, device-resident data, trigger set, events (and the log they write), control."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import nn

from wmstudio.config import ExperimentConfig
from wmstudio.control import RunControl
from wmstudio.data.batches import Augment, Normalizer, Source
from wmstudio.data.tensorset import DataPair, ImageTensors
from wmstudio.errors import RunLogError
from wmstudio.events import Event, EventCallback
from wmstudio.run_recorder import RunRecorder
from wmstudio.triggers import TriggerSet


def stage_seed(run_seed: int, stage: str) -> int:
    """The seed of one stage's randomness (data order, augmentation, noise), from run.seed and its name alone."""
    digest = hashlib.sha256(f"wmstudio:{run_seed}:{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass
class Session:
    cfg: ExperimentConfig
    device: torch.device
    model: nn.Module
    data: DataPair  # CPU copy of the whole data set
    owner: ImageTensors  # on device
    attacker: ImageTensors  # on device
    test: ImageTensors  # on device
    normalizer: Normalizer
    augment: Augment | None
    recorder: RunRecorder  # writes the log from the events (Session.emit)
    callback: EventCallback
    control: RunControl
    generator: torch.Generator
    trigger: TriggerSet | None = None
    trigger_images: torch.Tensor | None = None  # on device
    trigger_labels: torch.Tensor | None = None
    control_images: torch.Tensor | None = None  # on device: the trigger set's control (triggers/control.py)
    memory_format: torch.memory_format = torch.contiguous_format
    global_step: int = 0
    stage_order: int = 0
    references: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # "initial", "watermarked"
    # what the log records as a reference's name where it is not that name ("watermarked" taken at the start of a
    # stage run without embedding is recorded as "<stage>_start": the stage measures from its own start)
    recorded_as: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def emit(self, event: Event, best_effort: bool = False) -> None:
        """Record ``event`` in the log, then pass it to the callback. A failed write raises ``RunLogError``
        and the callback is not told; ``best_effort`` (a failure being reported) tells it anyway."""
        try:
            self.recorder(event)
        except RunLogError:
            if not best_effort:
                raise
        self.callback(event)

    def set_trigger(self, ts: TriggerSet) -> None:
        self.trigger = ts
        self.trigger_images = ts.images.to(self.device)
        self.trigger_labels = ts.labels.to(self.device)
        self.control_images = ts.control_images.to(self.device) if ts.control_images is not None else None

    def begin_stage_randomness(self, stage: str) -> None:
        """Reseed the run's generator and torch's global one for ``stage``: a stage then draws the same
        batches and noise whether it follows the earlier stages in one process or runs alone from their
        weights (a single-stage rerun, a sweep cell, the app's "Restore only")."""
        seed = stage_seed(self.cfg.run.seed, stage)
        self.generator.manual_seed(seed)
        torch.manual_seed(seed)

    def owner_source(self) -> Source:
        return Source(self.owner.images, self.owner.labels, self.augment)

    def snapshot(self, name: str, recorded_as: str = "") -> None:
        """Keeps the model's weights as the reference ``name``; the log records it as ``recorded_as`` when given."""
        self.references[name] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if recorded_as:
            self.recorded_as[name] = recorded_as
        else:
            self.recorded_as.pop(name, None)

    def recorded_reference(self, name: str) -> str:
        """The drift reference ``name`` as the log records it (``begin_stage``'s ``drift_reference``)."""
        return self.recorded_as.get(name, name)

    def reference_model(self, name: str) -> nn.Module:
        """A copy of the model holding the named reference weights (for drift measurement)."""
        import copy

        ref = copy.deepcopy(self.model)
        ref.load_state_dict(self.references[name])
        return ref
