"""A run log's changes between two snapshots, as the blocks that differ (what a sweep task streams back).

An HDF5 log grows mostly at its end and changes a few metadata blocks elsewhere at each commit, so
after the first snapshot a stage costs about the bytes it added, not the whole file again.
"""

from __future__ import annotations

from typing import Any

BLOCK = 64 << 10


def diff(previous: bytes, current: bytes, block: int = BLOCK) -> dict[str, Any]:
    """The blocks of ``current`` that differ from ``previous`` (offset, bytes), and its size."""
    blocks = [(i, current[i:i + block]) for i in range(0, len(current), block)
              if current[i:i + block] != previous[i:i + block]]
    return {"size": len(current), "blocks": blocks}


def apply(previous: bytes, delta: dict[str, Any]) -> bytes:
    """``previous`` with the delta's blocks written over it, cut or grown to its size."""
    size = int(delta["size"])
    out = bytearray(previous[:size].ljust(size, b"\0"))
    for offset, data in delta["blocks"]:
        out[offset:offset + len(data)] = data
    return bytes(out)


def nbytes(delta: dict[str, Any]) -> int:
    return sum(len(data) for _, data in delta["blocks"])
