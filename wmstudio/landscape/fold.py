"""Conv-BatchNorm folding for evaluation: one convolution instead of convolution + normalisation.

In eval mode a BatchNorm after a convolution is a per-channel affine map, so it can be folded
into the convolution's weight and bias. The folded model is built once (by tracing the model with
``torch.fx``); it shares every other module with the original, and :meth:`FoldedModel.refold`
recomputes the folded weights from the original's current parameters and running statistics
after each perturbation: a few small tensor ops per point instead of a BatchNorm pass over every
activation. Any model works: one that fx cannot trace, or without a Conv2d -> BatchNorm2d pair,
is evaluated as it is, and :func:`fold_for_eval` says why.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from wmstudio.landscape.layout import first_tensor, outputs_close


class FoldedModel:
    def __init__(self, module: fx.GraphModule, pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]],
                 left: int = 0) -> None:
        self.module = module
        self.pairs = pairs
        self.left = left  # BatchNorm layers that stay (not directly after a convolution of their own)

    @torch.no_grad()
    def refold(self) -> None:
        for conv, bn, fused in self.pairs:
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
            fused.bias.copy_(shift + (bias - bn.running_mean) * scale)


class NotFoldable(Exception):
    """Why a model is evaluated unfolded (the message goes to the landscape's log)."""


def _fold(model: nn.Module, memory_format: torch.memory_format) -> FoldedModel:
    try:
        traced = fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any model fx cannot trace is evaluated unfolded
        raise NotFoldable(f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    modules = dict(traced.named_modules())
    pairs = []
    n_bn = 0
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        n_bn += 1
        if not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        prev = node.args[0] if node.args else None
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        conv, bn = modules.get(prev.target), modules[node.target]
        if not isinstance(conv, nn.Conv2d) or not bn.track_running_stats or bn.running_var is None:
            continue
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
        fused = fused.to(conv.weight.device, conv.weight.dtype).to(memory_format=memory_format).requires_grad_(False)
        name = f"wmstudio_folded_{len(pairs)}"
        traced.add_submodule(name, fused)
        with traced.graph.inserting_after(prev):
            new = traced.graph.call_module(name, prev.args, prev.kwargs)
        node.replace_all_uses_with(new)
        traced.graph.erase_node(node)
        traced.graph.erase_node(prev)
        pairs.append((conv, bn, fused))
    if not pairs:
        raise NotFoldable("no BatchNorm layer" if n_bn == 0 else
                          f"none of its {n_bn} BatchNorm layers directly follows a Conv2d of its own")
    traced.graph.lint()
    traced.recompile()
    traced.eval()
    folded = FoldedModel(traced, pairs, n_bn - len(pairs))
    folded.refold()
    return folded


def fold_batchnorm(model: nn.Module, memory_format: torch.memory_format = torch.contiguous_format) -> FoldedModel | None:
    """A folded twin of ``model`` (sharing its other modules), or None when there is nothing to fold."""
    try:
        return _fold(model, memory_format)
    except NotFoldable:
        return None


def fold_for_eval(model: nn.Module, sample: torch.Tensor,
                  memory_format: torch.memory_format = torch.contiguous_format) -> tuple[FoldedModel | None, str]:
    """The folded twin and a note for the log, or None and the reason it is not used.

    The twin is checked on ``sample`` against the model itself; one whose outputs differ (a model
    whose forward does more than fx's graph shows) is not used either."""
    try:
        folded = _fold(model, memory_format)
    except NotFoldable as exc:
        return None, f"not folded: {exc}; evaluated as it is"
    with torch.inference_mode():
        try:
            ok, diff = outputs_close(first_tensor(folded.module(sample)), first_tensor(model(sample)))
        except Exception as exc:  # noqa: BLE001 - the traced twin fails where the model does not
            return None, f"not folded: the traced model fails ({type(exc).__name__}: {exc}); evaluated as it is"
    if not ok:
        return None, f"not folded: the folded model's outputs differ from the model's (max {diff:.3g}); evaluated as it is"
    kept = f"; {folded.left} BatchNorm layer(s) not after a Conv2d stay as they are" if folded.left else ""
    return folded, f"folded {len(folded.pairs)} Conv2d+BatchNorm2d pair(s) into single convolutions{kept}"
