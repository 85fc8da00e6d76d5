"""Picking the device: CUDA when present (``auto``), else the CPU; and the CPU threads a run uses."""

from __future__ import annotations

import torch

from wmstudio.errors import ConfigError

_DEFAULT_THREADS = torch.get_num_threads()  # the process's own count, before any run set one


def use_threads(threads: int) -> int:
    """PyTorch's CPU threads for a run or a landscape: ``threads``, or with 0 the process's default. The
    setting is the whole process's: in the app, a run with ``run.threads = 1`` (a CIFAR-10 log's settings)
    had left every later run with threads = 0 on 1 thread too, and a thread count can change the last
    digits of a result. Returns the count now in use."""
    count = threads if threads > 0 else _DEFAULT_THREADS
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def resolve_device(spec: str) -> torch.device:
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ConfigError("run.device", f"expected auto, cpu, cuda or cuda:N, got {spec!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device", f"{spec} asked for, but this machine has no usable CUDA device (use auto or cpu)")
    return device


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'})"
