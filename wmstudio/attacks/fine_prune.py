"""Fine-pruning (Liu et al., RAID 2018): measure the mean activation of the last conv layer's channels on
the attacker's clean images, remove the ``attack.sparsity`` fraction least active (the channels a
backdoor hides in), then fine-tune on the attacker's data with ``[finetune]``'s recipe (epochs, lr,
optimiser, data; the variant and mitigation settings are not used) while the removed channels stay
removed."""

from __future__ import annotations

import torch
from torch import nn

from wmstudio.attacks import STAGE
from wmstudio.attacks.stage import accuracies, conv_with_norm, record, zero_channels
from wmstudio.data.batches import BatchStream, Normalizer, Source
from wmstudio.errors import ConfigError
from wmstudio.session import Session
from wmstudio.stages.finetune import attacker_data
from wmstudio.stages.training import StageHooks, train_stage


@torch.no_grad()
def channel_activity(model: nn.Module, layer: nn.Module, images: torch.Tensor, normalizer: Normalizer,
                     batch_size: int, memory_format: torch.memory_format) -> torch.Tensor:
    """Mean ReLU activation of each output channel of ``layer`` over ``images`` (uint8), in eval mode."""
    total: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: total.append(torch.relu(out).mean(dim=(0, 2, 3)) * len(out)))
    was = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            model(normalizer(images[start:start + batch_size]).contiguous(memory_format=memory_format))
    finally:
        handle.remove()
        model.train(was)
    return torch.stack(total).sum(0) / len(images)


class KeepPruned(StageHooks):
    """Re-zero the removed channels after every optimiser step (fine-tuning must not regrow them)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, channels: torch.Tensor) -> None:
        self.conv, self.bn, self.channels = conv, bn, channels

    def after_step(self, step: int, opt: torch.optim.Optimizer) -> None:
        zero_channels(self.conv, self.bn, self.channels)


def run(s: Session) -> dict[str, float]:
    a, f = s.cfg.attack, s.cfg.finetune
    before = accuracies(s)
    data = attacker_data(s)
    layers = conv_with_norm(s.model)
    if not layers:
        raise ConfigError("attack.kind", f"fine_prune prunes conv channels; {type(s.model).__name__} has no Conv2d")
    name, conv, bn = layers[-1]
    activity = channel_activity(s.model, bn if bn is not None else conv, data.images, s.normalizer,
                                s.cfg.run.eval_batch_size, s.memory_format)
    k = int(round(a.sparsity * conv.out_channels))
    channels = torch.argsort(activity)[:k].sort().values
    zero_channels(conv, bn, channels)
    pruned = accuracies(s)
    stream = BatchStream(Source(data.images, data.labels, s.augment), f.batch_size, s.normalizer, s.generator,
                         memory_format=s.memory_format)
    last = train_stage(s, STAGE, f, stream, drift_reference="watermarked", hooks=KeepPruned(conv, bn, channels))
    record(s, {"before": before, "after_pruning": pruned, "layer": name, "channels": conv.out_channels,
               "pruned_channels": channels.tolist(), "activity": activity.tolist(), "finetune_images": len(data)})
    return last
