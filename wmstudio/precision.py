"""Arithmetic precision: where bfloat16 is fast, and the autocast context the training steps run in.

Training in ``bf16`` keeps fp32 master weights and optimiser state (torch.autocast casts only the
matrix products and convolutions); evaluations never run under it, so trigger accuracy and the
verification decision are always fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 arithmetic


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def bf16_fast(device: torch.device, flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """(fast, reason): whether bfloat16 arithmetic is native on ``device``, and why (or why not)."""
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "CUDA device supports bf16" if ok else "this CUDA device has no bf16 support"
    if device.type != "cpu":
        return False, f"no bf16 check for device type {device.type}"
    have = [f for f in BF16_CPU_FLAGS if f in (cpu_flags() if flags is None else flags)]
    if have:
        return True, f"CPU has {'+'.join(have)}"
    return False, "CPU has neither AVX512-BF16 nor AMX (bf16 would be emulated, slower than fp32)"


@contextlib.contextmanager
def training_autocast(device: torch.device, precision: str) -> Iterator[None]:
    """The forward pass and loss of one training step: bf16 autocast when ``precision == "bf16"``."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
