"""How many local worker processes a landscape may start: bounded by the cores and the free memory.

Each worker (a process of ``--workers N``, or an actor of a local Ray instance) imports PyTorch and
holds its own copy of the model, the points' weights and the evaluation images, so too many workers
only swap (``--workers 64`` on 2 cores once took 18 GB). ``check_workers`` refuses such a count
before any process starts, with the reason; a Ray cluster's workers are the cluster's to bound.
"""

from __future__ import annotations

import os

from wmstudio.errors import ConfigError
from wmstudio.memory import gib, memory_budget

WORKER_BASE_BYTES = 400 * 2**20  # one worker process before its model and data: Python, PyTorch, the evaluator


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or taskset's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int:
    """Bytes of memory available for new processes (Linux's MemAvailable; else half the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return memory_budget()


def worker_bytes(model_bytes: int, data_bytes: int) -> int:
    """A worker's memory, estimated: the process, the model twice (its weights and a point's), the images
    as stored (uint8) and as evaluated (float32)."""
    return WORKER_BASE_BYTES + 2 * model_bytes + 5 * data_bytes


def check_workers(workers: int, per_worker: int, field: str = "--workers") -> None:
    """Refuse more local workers than the usable cores, or than the available memory holds, naming the reason."""
    cores = usable_cores()
    if workers > cores:
        raise ConfigError(field, f"{workers} worker processes but this machine lets the process use {cores} "
                                 f"core{'s' * (cores != 1)}: at most {cores} (each worker is a process "
                                 "evaluating points; more than the cores only adds memory and switching)")
    free = available_memory()
    fits = max(1, free // max(1, per_worker))
    if workers > fits:
        raise ConfigError(field, f"{workers} workers need about {gib(workers * per_worker)} (about "
                                 f"{gib(per_worker)} each: PyTorch, the model and the evaluation images), but "
                                 f"{gib(free)} of memory is available: at most {fits}")
