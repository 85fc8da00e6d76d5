"""How much memory one data set or batch may take before it is refused (no PyTorch needed)."""

from __future__ import annotations

import os

FALLBACK_BUDGET = 16 * 2**30


def memory_budget() -> int:
    """Bytes a single data set or batch may take: half the machine's physical memory (16 GiB where unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return FALLBACK_BUDGET


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
