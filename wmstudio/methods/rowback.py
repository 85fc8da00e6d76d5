"""ROWBACK (Chattopadhyay & Chattopadhyay 2021): spread the watermark through every layer.

Plain epochs first; then each epoch trains one layer group with all the others frozen, rotating
through the groups, while the classifier head always trains.
"""

from __future__ import annotations

from wmstudio.errors import ConfigError
from wmstudio.events import StageDetail
from wmstudio.methods.common import embed_stream, layer_blocks
from wmstudio.models import last_linear_name
from wmstudio.session import Session
from wmstudio.stages.training import StageHooks, train_stage


class RowbackHooks(StageHooks):
    def __init__(self, s: Session) -> None:
        model = s.model
        e = s.cfg.embed
        self.model = model
        self.plain_epochs = e.rowback_plain_epochs
        self.groups = list(e.rowback_groups) or layer_blocks(model)
        names = dict(model.named_modules())
        for g in self.groups:
            if any(part not in names for part in g.split("+")):
                raise ConfigError("embed.rowback_groups", f"no module named {g!r}; blocks of this model: "
                                                          f"{', '.join(layer_blocks(model))}")
        if not self.groups:
            raise ConfigError("embed.rowback_groups", "the model has no layer groups to rotate")
        self.head = last_linear_name(model)
        self.trained: list[list[str]] = []  # per epoch: the parameter names that could train
        self.schedule: list[str] = []  # per epoch: "all", or the group trained (with the head)
        self.trainable_share: list[float] = []  # per epoch: the share of parameter elements that could train

    def before_epoch(self, epoch: int) -> None:
        model = self.model
        if epoch < self.plain_epochs:
            for p in model.parameters():
                p.requires_grad_(True)
            self.schedule.append("all")
        else:
            group = self.groups[(epoch - self.plain_epochs) % len(self.groups)]
            active = group.split("+")
            for name, p in model.named_parameters():
                p.requires_grad_(any(name.startswith(a + ".") for a in active) or name.startswith(self.head + "."))
            self.schedule.append(group)
        self.trained.append([n for n, p in model.named_parameters() if p.requires_grad])
        total = sum(p.numel() for p in model.parameters())
        self.trainable_share.append(sum(p.numel() for p in model.parameters() if p.requires_grad) / max(1, total))

    def record(self) -> dict[str, object]:
        """What the log keeps (the stage's rowback_json): the schedule that ran, epoch by epoch."""
        frozen = sum(1 for g in self.schedule if g != "all")
        return {"plain_epochs": self.plain_epochs, "groups": self.groups, "head": self.head,
                "schedule": self.schedule, "trainable_share": [round(v, 4) for v in self.trainable_share],
                "rotating_epochs": frozen, "epochs": len(self.schedule),
                "rotating_share": frozen / len(self.schedule) if self.schedule else 0.0}


def run(s: Session) -> dict[str, float]:
    hooks = RowbackHooks(s)
    s.method_state = hooks  # type: ignore[attr-defined] - inspected by tests and the log writer
    try:
        last = train_stage(s, "embed", s.cfg.embed, embed_stream(s), drift_reference="initial", hooks=hooks)
    finally:
        for p in s.model.parameters():
            p.requires_grad_(True)
    s.emit(StageDetail("embed", "rowback_json", hooks.record()))
    return last
