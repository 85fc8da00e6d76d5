"""Does a checkpoint fit a model? Key and shape comparison as PyTorch's ``load_state_dict`` does it,
a short table of what differs, and a hint at the likely cause.

Old-format BatchNorm state dicts (saved before PyTorch 0.4.1, module version < 2, or with no
version metadata at all) have no ``num_batches_tracked``; PyTorch's BatchNorm fills it in on load,
so such a key missing is not a mismatch here either (``Fit.filled`` lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

Shape = tuple[int, ...]


@dataclass
class Fit:
    """How a checkpoint's tensors line up with a model's state_dict."""

    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model
    shapes: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # (key, checkpoint, model)
    filled: list[str] = field(default_factory=list)  # num_batches_tracked PyTorch fills for old BatchNorm

    def fits(self, strict: bool) -> bool:
        return not self.shapes and (not strict or not (self.missing or self.unexpected))

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.shapes)


def _module_version(metadata: Mapping[str, Any] | None, prefix: str) -> int | None:
    if not metadata:
        return None
    entry = metadata.get(prefix)
    return entry.get("version") if isinstance(entry, Mapping) else None


def _filled_by_batchnorm(model: nn.Module, key: str, metadata: Mapping[str, Any] | None) -> bool:
    """True for a ``num_batches_tracked`` that BatchNorm itself fills when loading an old-format state dict."""
    if not key.endswith("num_batches_tracked"):
        return False
    prefix = key[: -len("num_batches_tracked")].rstrip(".")
    try:
        module = model.get_submodule(prefix)
    except AttributeError:
        return False
    if not (isinstance(module, _BatchNorm) and module.track_running_stats):
        return False
    version = _module_version(metadata, prefix)
    return version is None or version < 2


DUAL_BN = ("bn_clean", "bn_trigger")  # the BatchNorm pair APP's model variant has (wmstudio.methods.dual_bn)


def for_model(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` as ``model`` names them where the only difference is APP's BatchNorm pair: a model
    with separate clean and trigger BatchNorm starting from a checkpoint of the same network without
    them (a base model) gets the checkpoint's ``P.weight`` etc. in both ``P.bn_clean`` and
    ``P.bn_trigger``, as a fresh pair starts from one BatchNorm. Every other key is left as it is."""
    own = model.state_dict()
    out = dict(tensors)
    for key in own:
        if key in out:
            continue
        prefix, _, leaf = key.rpartition(".")
        parent, _, pair = prefix.rpartition(".")
        plain = f"{parent}.{leaf}" if parent else leaf
        if pair in DUAL_BN and plain in tensors and not any(f"{parent}.{p}.{leaf}".lstrip(".") in tensors for p in DUAL_BN):
            out[key] = tensors[plain]
    for key in [k for k in out if k not in own]:
        prefix = key.rpartition(".")[0]
        if all(f"{prefix}.{p}.{key.rpartition('.')[2]}".lstrip(".") in out for p in DUAL_BN):
            del out[key]  # given to both BatchNorms of the pair
    return out


def compare(model: nn.Module, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> Fit:
    """Compare a checkpoint's tensors (and its ``_metadata`` module versions, if any) with ``model``
    (after ``for_model``: a plain BatchNorm fits APP's pair)."""
    tensors = for_model(model, tensors)
    own = model.state_dict()
    fit = Fit()
    for key, value in own.items():
        if key not in tensors:
            (fit.filled if _filled_by_batchnorm(model, key, metadata) else fit.missing).append(key)
        elif tuple(tensors[key].shape) != tuple(value.shape):
            fit.shapes.append((key, tuple(tensors[key].shape), tuple(value.shape)))
    fit.unexpected = [k for k in tensors if k not in own]
    return fit


def _names(keys: list[str], limit: int = 8) -> str:
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def table(fit: Fit, limit: int = 8) -> str:
    """The differences as a few indented lines: missing, unexpected, shape differences with both shapes."""
    lines = []
    if fit.missing:
        lines.append(f"  missing from the checkpoint ({len(fit.missing)}): {_names(fit.missing, limit)}")
    if fit.unexpected:
        lines.append(f"  not in the model ({len(fit.unexpected)}): {_names(fit.unexpected, limit)}")
    if fit.shapes:
        lines.append(f"  shape differs ({len(fit.shapes)}):")
        width = max(len(k) for k, _, _ in fit.shapes[:limit])
        ck_width = max(len(str(ck)) for _, ck, _ in fit.shapes[:limit])
        for key, ck, mo in fit.shapes[:limit]:
            lines.append(f"    {key:<{width}}  checkpoint {str(ck):<{ck_width}}  model {mo}")
        if len(fit.shapes) > limit:
            lines.append(f"    ... ({len(fit.shapes) - limit} more)")
    return "\n".join(lines)


def head_name(model: nn.Module) -> str | None:
    """The classifier head: the last nn.Linear in definition order (None without one)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def _renamed(fit: Fit, tensors: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> list[tuple[str, str]]:
    """Pairs (checkpoint key, model key) that look like the same tensor under another name."""
    pairs = []
    free = list(fit.unexpected)
    for key in fit.missing:
        suffix = key.rsplit(".", 1)[-1]
        match = next((u for u in free if u.rsplit(".", 1)[-1] == suffix and tensors[u].shape == own[key].shape), None)
        if match is not None:
            free.remove(match)
            pairs.append((match, key))
    return pairs


def hint(model: nn.Module, fit: Fit, tensors: Mapping[str, torch.Tensor]) -> str:
    """The likely cause of a mismatch, in one sentence (empty when nothing stands out)."""
    own = model.state_dict()
    head = head_name(model)
    head_keys = {f"{head}.weight", f"{head}.bias"} if head else set()
    head_shapes = [s for s in fit.shapes if s[0] in head_keys]
    other_shapes = [s for s in fit.shapes if s[0] not in head_keys]
    if head_shapes and not other_shapes and not fit.missing and not fit.unexpected:
        ck, mo = head_shapes[0][1][0], head_shapes[0][2][0]
        return (f"likely cause: the classifier head ({head}) is for {ck} classes and this model has {mo}: a checkpoint "
                "trained for another class count (another data set); model.reinit_head = true loads the rest and "
                "re-initialises the head")
    first = next(iter(own), None)
    if len(other_shapes) == 1 and other_shapes[0][0] == first and len(other_shapes[0][1]) == 4 \
            and other_shapes[0][1][0] == other_shapes[0][2][0] and other_shapes[0][1][1] != other_shapes[0][2][1]:
        ck, mo = other_shapes[0][1][1], other_shapes[0][2][1]
        return (f"likely cause: the checkpoint takes {ck}-channel images and this data set has {mo} channels "
                "(grey vs colour): another data set")
    if other_shapes:
        return ("likely cause: the same layers at other sizes: a different width or configuration of this "
                "architecture (check model.options, e.g. width) or a model for other input channels")
    renamed = _renamed(fit, tensors, own)
    if renamed and len(renamed) == len(fit.missing) == len(fit.unexpected):
        shown = ", ".join(f"{a} -> {b}" for a, b in renamed[:3])
        return (f"likely cause: the same tensors under other names ({shown}): a model whose layers are named "
                "differently; define the model with the checkpoint's names (model.file)")
    if fit.unexpected and len(fit.unexpected) * 2 > len(tensors):
        known = len(tensors) - len(fit.unexpected)
        return (f"likely cause: a different architecture: only {known} of the checkpoint's {len(tensors)} tensors "
                "have a name this model knows")
    if fit.missing or fit.unexpected:
        return ("likely cause: a different depth or variant of this architecture (e.g. resnet20 vs resnet32), "
                "or a checkpoint holding only part of the model")
    return ""


def describe_mismatch(model: nn.Module, fit: Fit, tensors: Mapping[str, torch.Tensor]) -> str:
    """The table and the hint, for an error message."""
    text = table(fit)
    cause = hint(model, fit, tensors)
    return f"{text}\n  {cause}" if cause else text
