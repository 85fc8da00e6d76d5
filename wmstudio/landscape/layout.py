"""The memory layout a landscape evaluates a model in: channels-last where it is safe, else NCHW.

Channels-last makes a CPU's (and a GPU's) convolutions markedly faster. A model from a user's file
may depend on its input's memory layout (a ``.view()`` of a 4-D activation, code that reads raw
storage), so the layout is not assumed: the model is run on a few of the evaluated images in both
layouts, and channels-last is kept only when it runs and gives the same outputs. Otherwise the model
is evaluated in NCHW, and the note (which goes to the landscape's log) says why.
"""

from __future__ import annotations

import torch
from torch import nn

CHECK_IMAGES = 8


def has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def outputs_close(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, float]:
    """Same outputs up to float rounding (relative to their size), and the largest difference."""
    if a.shape != b.shape:
        return False, float("inf")
    diff = float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
    return diff <= 1e-3 * (1.0 + float(b.float().abs().max())), diff


def first_tensor(out: object) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"the model returned {type(out).__name__}, not a tensor")


def choose_layout(model: nn.Module, sample: torch.Tensor, wanted: torch.memory_format) -> tuple[torch.memory_format, str]:
    """Put ``model`` in the layout to evaluate it in (``wanted`` if it checks out on ``sample``, an NCHW
    batch) and return that layout with a note for the log."""
    nchw = torch.contiguous_format
    if wanted != torch.channels_last:
        model.to(memory_format=nchw)
        return nchw, "NCHW (channels-last switched off: run.channels_last = false)"
    if sample.dim() != 4 or not has_conv2d(model):
        model.to(memory_format=nchw)
        return nchw, "NCHW (no Conv2d on 4-D images: channels-last would not help)"
    if len(sample) == 0:
        model.to(memory_format=nchw)
        return nchw, "NCHW (no images to check channels-last on)"
    x = sample[:CHECK_IMAGES]
    with torch.inference_mode():
        model.to(memory_format=nchw)
        reference = first_tensor(model(x.contiguous()))
        model.to(memory_format=torch.channels_last)
        try:
            ok, diff = outputs_close(first_tensor(model(x.contiguous(memory_format=torch.channels_last))), reference)
        except Exception as exc:  # noqa: BLE001 - a model that needs NCHW input is evaluated in NCHW
            model.to(memory_format=nchw)
            first = str(exc).splitlines()[0] if str(exc) else ""
            return nchw, f"NCHW (the model fails on channels-last input: {type(exc).__name__}: {first})"
    if not ok:
        model.to(memory_format=nchw)
        return nchw, f"NCHW (the model's outputs depend on the memory layout: max difference {diff:.3g})"
    return torch.channels_last, "channels_last (outputs checked against NCHW)"
