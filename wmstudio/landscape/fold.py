"""Conv-BatchNorm folding for evaluation: one convolution instead of convolution + normalisation.

In eval mode a BatchNorm after a convolution is a per-channel affine map, so it can be folded
into the convolution's weight and bias. The folded model is built once (by tracing the model with
``torch.fx``); it shares every other module with the original, and :meth:`FoldedModel.refold`
recomputes the folded weights from the original's current parameters and running statistics
after each perturbation: a few small tensor ops per point instead of a BatchNorm pass over every
activation. Models that cannot be traced are evaluated as they are.
"""

from __future__ import annotations

import torch
from torch import fx, nn


class FoldedModel:
    def __init__(self, module: fx.GraphModule, pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]]) -> None:
        self.module = module
        self.pairs = pairs

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


def fold_batchnorm(model: nn.Module, memory_format: torch.memory_format = torch.contiguous_format) -> FoldedModel | None:
    """A folded twin of ``model`` (sharing its other modules), or None when there is nothing to fold."""
    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - any model fx cannot trace is simply evaluated unfolded
        return None
    modules = dict(traced.named_modules())
    pairs = []
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
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
        return None
    traced.graph.lint()
    traced.recompile()
    traced.eval()
    folded = FoldedModel(traced, pairs)
    folded.refold()
    return folded
