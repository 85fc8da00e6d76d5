"""A stored landscape's points and their evaluation: the point set rebuilt from the log (by its kind),
the evaluator, a batch of points evaluated. Shared by the driver and its pool workers (``compute``) and
the Ray actors (``distributed``), so neither of those imports the other for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wmstudio.control import RunControl
from wmstudio.data.imagefolder import default_cache_dir
from wmstudio.landscape import store
from wmstudio.landscape.context import LogContext
from wmstudio.landscape.curve import CurvePoints
from wmstudio.landscape.evaluator import PointEvaluator
from wmstudio.landscape.kinds.base import kind_of
from wmstudio.landscape.points import AxisPoints, GridPoints, LinePoints
from wmstudio.landscape.spec import LINE_METRICS, METRICS, LandscapeSpec


def points_from_store(ctx: LogContext, log_path: Path, name: str) -> GridPoints | LinePoints | AxisPoints | CurvePoints:
    """The point set of a stored landscape, rebuilt from what the log holds (so a resume is exact): its
    kind's ``points``."""
    ls = store.read(log_path, name)
    return kind_of(ls.kind).points(ctx, ls, lambda: store.read_vectors(log_path, name))


def make_evaluator(ctx: LogContext, spec: LandscapeSpec, precision: str = "fp32",
                   likely: str = "") -> PointEvaluator:
    """The evaluator of ``spec``'s points; ``precision``: the one chosen for the landscape (fp32 | bf16);
    ``likely``: the precision the batch size is measured in when the choice is still to come (bf16 where
    ``auto`` will probably take it: one probe, not one in each precision)."""
    clean = ctx.test if spec.data == "test" else ctx.owner
    n = len(clean) if spec.images == 0 else min(spec.images, len(clean))
    bn_images = None
    if spec.bn == "recompute":
        gen = torch.Generator().manual_seed(spec.seed)
        take = torch.randperm(len(ctx.owner), generator=gen)[:spec.bn_batches * 256].to(ctx.owner.images.device)
        bn_images = ctx.owner.images[take]
    cache = Path(ctx.cfg.data.cache_dir) if ctx.cfg.data.cache_dir else default_cache_dir()
    ev = PointEvaluator(ctx.model, clean.images[:n], clean.labels[:n], ctx.trigger_images, ctx.trigger_labels,
                        ctx.normalizer, ctx.memory_format, spec.batch_size, bn_images, cache_dir=cache,
                        probe_precision=likely or precision)
    if likely:
        ev.precision = precision  # the caller decides, then calls use_precision
    else:
        ev.use_precision(precision)
    return ev


def likely_precision(ctx: LogContext, spec: LandscapeSpec, ls: store.Landscape) -> str:
    """The precision a landscape's points will most likely be evaluated in, before ``auto``'s check: the
    recorded one when resuming, bf16 when asked for or when ``auto`` runs where bf16 is fast, else fp32."""
    from wmstudio.precision import bf16_fast

    if "eval_precision" in ls.attrs:
        return stored_precision(ls)
    return "bf16" if spec.precision == "bf16" or (spec.precision == "auto" and bf16_fast(ctx.device)[0]) else "fp32"


def stored_precision(ls: store.Landscape) -> str:
    """The precision a landscape's points are evaluated in, as recorded (fp32 before the setting existed)."""
    return "bf16" if ls.attrs.get("eval_precision") == "bf16" else "fp32"


def evaluate_points(ev: PointEvaluator, points: GridPoints | LinePoints | AxisPoints | CurvePoints,
                    indices: np.ndarray, control: RunControl | None = None) -> dict[str, np.ndarray]:
    """The metrics at ``indices``; a curve's also at the straight segment's points (``line_<metric>``)."""
    buf = torch.empty(ev.pv.numel, device=ev.inputs.device)
    curve = isinstance(points, CurvePoints)
    keys = METRICS + LINE_METRICS if curve else METRICS
    out = {m: np.empty(len(indices)) for m in keys}
    for n, k in enumerate(indices):
        if control is not None:
            control.checkpoint()
        vals = ev.evaluate(points.params(int(k), buf), points.stats(int(k)))
        if curve:
            assert isinstance(points, CurvePoints)
            vals.update({f"line_{m}": v for m, v in ev.evaluate(points.line_params(int(k), buf)).items()})
        for m in keys:
            out[m][n] = vals[m]
    return out
