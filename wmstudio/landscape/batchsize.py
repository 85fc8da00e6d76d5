"""The evaluation batch size: measured once in a short probe, then cached per model, device and input.

On a CPU the fastest batch of a large model is small (a batch's activations should stay near the
caches; very large batches also pay for fresh pages from the allocator on every pass), of a tiny one
large (the per-call overhead dominates); on a GPU it is large. The probe times each candidate size
over at least ``MIN_TIMING_S`` of work (a tiny model's batch is repeated: one call of a fraction of
a millisecond is mostly timer and scheduler noise), round-robin so that a noisy neighbour does not
favour one size, stops going larger once throughput falls, and stays within ``budget`` seconds. The
answer is cached in ``<cache dir>/eval_batch_sizes.json`` under a key made of the model's structure
(class, parameter and buffer shapes), the folded/layout setting, the input shape, the device, the
thread count and the PyTorch version. A cached size is checked against its neighbours in the
candidate list (a few batches) before it is used; one that lost, e.g. because it was measured while
something else ran, is measured again and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

CANDIDATES = (32, 64, 128, 256, 512, 1024, 2048)
GPU_BATCH = 2048
CPU_DEFAULT = 128  # when the probe cannot tell: small enough for a CPU's caches, large enough for a small model
PROBE_BUDGET_S = 1.5
MIN_TIMING_S = 0.02  # each timing covers at least this much work (a small batch is repeated)
CHECK_MARGIN = 1.25  # a cached size slower than a neighbour by more than this is measured again (noise stays under it)
CACHE_FILE = "eval_batch_sizes.json"


@dataclass(frozen=True)
class BatchChoice:
    size: int
    source: str  # "measured", "cached", "default" (probe cut short), "device" (a GPU: the largest), "all images"
    seconds: float  # what the choice cost
    note: str  # one line for the log


def model_key(model: nn.Module, inputs: torch.Tensor, setting: str) -> str:
    """A key naming everything that decides the fastest batch: structure, layout, input, device, threads."""
    parts = [type(model).__module__.split(".")[0] + ":" + type(model).__qualname__, setting,
             str(tuple(inputs.shape[1:])), str(inputs.dtype), inputs.device.type, f"threads={torch.get_num_threads()}",
             f"torch={torch.__version__}", platform.machine(), platform.processor() or ""]
    parts += [f"{n}:{tuple(p.shape)}" for n, p in model.named_parameters()]
    parts += [f"{n}:{tuple(b.shape)}" for n, b in model.named_buffers()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _read_cache(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int) and v > 0} if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, size: int) -> None:
    """Best effort: a cache that cannot be written only means the next landscape measures again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        data[key] = size
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def time_per_image(forward: Callable[[torch.Tensor], object], batch: torch.Tensor, min_s: float | None = None) -> float:
    """Seconds per image of ``forward(batch)``, the batch repeated until at least ``min_s`` has passed."""
    min_s = MIN_TIMING_S if min_s is None else min_s
    reps, start = 0, time.perf_counter()
    while True:
        forward(batch)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return elapsed / (reps * len(batch))


def probe(forward: Callable[[torch.Tensor], object], inputs: torch.Tensor, candidates: list[int],
          budget: float | None = None) -> tuple[int | None, dict[int, float]]:
    """The candidate with the least time per image (each timed over ``MIN_TIMING_S`` or more, round-robin, best
    of the rounds), or None when the budget ran out before the first round had compared at least three sizes (a
    CPU too busy to tell)."""
    budget = PROBE_BUDGET_S if budget is None else budget
    per_image: dict[int, float] = {}
    start = time.perf_counter()
    with torch.inference_mode():
        forward(inputs[:candidates[0]])  # first-call costs (allocator, kernels) are not the small batch's fault
        warm = (time.perf_counter() - start) / candidates[0]  # an estimate until the first size is timed
        live = list(candidates)
        for round_ in range(3):
            cut = False
            for bs in list(live):
                per = min(per_image.values()) if per_image else warm
                if time.perf_counter() - start + max(bs * per, MIN_TIMING_S) > budget:
                    cut = True  # the next timing would not end within the budget
                    break
                per_image[bs] = min(per_image.get(bs, float("inf")), time_per_image(forward, inputs[:bs]))
                if round_ == 0 and bs != live[0] and per_image[bs] > 1.3 * min(per_image.values()):
                    live = live[:live.index(bs) + 1]  # throughput is falling: larger batches are not tried
                    break
            if cut:
                if round_ == 0 and len(per_image) < 3:
                    return None, per_image
                break
            best = min(per_image, key=per_image.__getitem__)
            live = [b for b in live if per_image[b] <= 1.15 * per_image[best]]  # re-time the close ones
    return min(per_image, key=per_image.__getitem__), per_image


def check_cached(forward: Callable[[torch.Tensor], object], inputs: torch.Tensor, cached: int,
                 candidates: list[int]) -> tuple[bool, dict[int, float]]:
    """Whether the cached size still beats its neighbours in ``candidates`` (within ``CHECK_MARGIN``), timed
    twice round-robin; and the times per image."""
    i = candidates.index(cached)
    sizes = candidates[max(0, i - 1):i + 2]
    per_image: dict[int, float] = {}
    with torch.inference_mode():
        forward(inputs[:cached])
        for _ in range(2):
            for bs in sizes:
                per_image[bs] = min(per_image.get(bs, float("inf")), time_per_image(forward, inputs[:bs]))
    return per_image[cached] <= CHECK_MARGIN * min(per_image.values()), per_image


def choose_batch_size(forward: Callable[[torch.Tensor], object], model: nn.Module, inputs: torch.Tensor,
                      setting: str, cache_dir: Path | None) -> BatchChoice:
    """The batch size for evaluating ``inputs``: cached, or measured (and cached) within the probe budget."""
    n = len(inputs)
    start = time.perf_counter()
    if inputs.device.type != "cpu":
        size = min(n, GPU_BATCH)
        return BatchChoice(size, "device", 0.0, f"{size} (the largest candidate on {inputs.device.type})")
    candidates = sorted({min(n, c) for c in CANDIDATES})
    if len(candidates) == 1:
        return BatchChoice(n, "all images", 0.0, f"{n} (all images in one batch)")
    path = cache_dir / CACHE_FILE if cache_dir is not None else None
    key = model_key(model, inputs, setting)
    stale = ""
    if path is not None:
        cached = _read_cache(path).get(key)
        if cached is not None and cached in candidates:
            ok, checked = check_cached(forward, inputs, cached, candidates)
            spent = time.perf_counter() - start
            if ok:
                return BatchChoice(cached, "cached", spent, f"{cached} (cached in {path}; checked against its "
                                                            f"neighbours in {spent:.2f} s)")
            best = min(checked, key=checked.__getitem__)
            stale = (f"; the cached {cached} ran {checked[cached] / checked[best]:.1f}x slower than {best}, "
                     "so it was measured again")
    size, per_image = probe(forward, inputs, candidates)
    spent = time.perf_counter() - start
    rates = ", ".join(f"{bs}: {1 / t:,.0f}/s" for bs, t in sorted(per_image.items())) + stale
    if size is None:  # not cached: a quieter moment measures it properly
        size = min(n, CPU_DEFAULT)
        return BatchChoice(size, "default", spent, f"{size} (the CPU default: the {spent:.2f} s probe could not "
                                                   f"compare sizes on this busy CPU: {rates})")
    if path is not None:
        _write_cache(path, key, size)
    return BatchChoice(size, "measured", spent, f"{size} (measured in {spent:.2f} s: {rates})")
