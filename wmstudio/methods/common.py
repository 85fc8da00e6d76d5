"""What the embedding methods share: the mixed embed stream, trigger rows of a batch, layer groups."""

from __future__ import annotations

from torch import nn

from wmstudio.data.batches import BatchStream, Source
from wmstudio.errors import TriggerError
from wmstudio.models import last_linear_name
from wmstudio.session import Session


def embed_stream(s: Session) -> BatchStream:
    """Owner batches with ``trigger_fraction`` of trigger samples appended to each (the last rows)."""
    if s.trigger_images is None or s.trigger_labels is None:
        raise TriggerError("embed: no trigger set was built")
    e = s.cfg.embed
    triggers = Source(s.trigger_images, s.trigger_labels, s.augment if e.augment_triggers else None)
    return BatchStream(s.owner_source(), e.batch_size, s.normalizer, s.generator,
                       extra=[(triggers, e.trigger_fraction)], memory_format=s.memory_format)


def trigger_rows(stream: BatchStream) -> int:
    """How many rows at the end of each batch are trigger samples."""
    return stream.extra[0][1] if stream.extra else 0


def layer_blocks(model: nn.Module) -> list[str]:
    """Module names that split the model into trainable blocks, the classifier head excluded.

    The top-level children with parameters; containers (Sequential, ModuleList) are opened one
    level so a model built as one Sequential still has several blocks. A normalisation layer
    (BatchNorm, LayerNorm, GroupNorm) belongs to the block before it.
    """
    head = last_linear_name(model)
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
    candidates: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if not any(True for _ in child.parameters()) or name == head:
            continue
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
            candidates += [(f"{name}.{n}", c) for n, c in child.named_children()
                           if any(True for _ in c.parameters()) and f"{name}.{n}" != head]
        else:
            candidates.append((name, child))
    blocks: list[str] = []
    for name, module in candidates:
        is_norm = isinstance(module, norm_types) or type(module).__name__ == "DualBatchNorm2d"
        if is_norm and blocks:
            blocks[-1] = f"{blocks[-1]}+{name}"
        else:
            blocks.append(name)
    return blocks
