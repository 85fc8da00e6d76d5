"""A stored landscape's points and their evaluation: the point set rebuilt from the log, the evaluator,
a batch of points evaluated. Shared by the driver and its pool workers (``compute``) and the Ray actors
(``distributed``), so neither of those imports the other for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wmstudio.control import RunControl
from wmstudio.data.imagefolder import default_cache_dir
from wmstudio.landscape import store
from wmstudio.landscape.context import LogContext
from wmstudio.landscape.curve import CurvePoints
from wmstudio.landscape.directions import Plane, state_directions
from wmstudio.landscape.evaluator import PointEvaluator
from wmstudio.landscape.flat import ParamVector, float_buffers
from wmstudio.landscape.points import AxisPoints, GridPoints, LinePoints
from wmstudio.landscape.spec import LINE_METRICS, METRICS, LandscapeSpec


def stage_vector(ctx: LogContext, pv: ParamVector, stage: str) -> torch.Tensor:
    """A stage's parameters as one flat vector (``pv``'s layout), on the context's device."""
    return pv.from_state_dict(ctx.state(stage))


def stage_buffers(ctx: LogContext, stage: str) -> dict[str, torch.Tensor]:
    """A stage's floating-point buffers (BatchNorm statistics), as float."""
    names = set(float_buffers(ctx.model))
    return {k: v.float() for k, v in ctx.state(stage).items() if k in names}


def points_from_store(ctx: LogContext, log_path: Path, name: str) -> GridPoints | LinePoints | AxisPoints | CurvePoints:
    """The point set of a stored landscape, rebuilt from what the log holds (so a resume is exact)."""
    ls = store.read(log_path, name)
    spec = ls.spec
    pv = ParamVector(ctx.model)
    if ls.kind == "line":
        return LinePoints([stage_vector(ctx, pv, m) for m in spec.models], [stage_buffers(ctx, m) for m in spec.models],
                          ls.axes["segment"], ls.axes["frac"], ls.axes["t"])
    vec = store.read_vectors(log_path, name)
    dev = ctx.device
    if ls.kind == "curve":
        return CurvePoints(stage_vector(ctx, pv, spec.models[0]), torch.from_numpy(vec["bend"]).to(dev),
                           stage_vector(ctx, pv, spec.models[1]), ls.axes["t"])
    if ls.kind == "hessian_line":
        return AxisPoints(torch.from_numpy(vec["origin"]).to(dev), torch.from_numpy(vec["directions"][0]).to(dev),
                          ls.axes["t"], stage_buffers(ctx, spec.center))
    plane = Plane(torch.from_numpy(vec["origin"]).to(dev), torch.from_numpy(vec["directions"][0]).to(dev),
                  torch.from_numpy(vec["directions"][1]).to(dev))
    if ls.kind in ("plane", "displacement"):
        return GridPoints(plane, ls.axes["x"], ls.axes["y"], anchor_buffers=[stage_buffers(ctx, m) for m in spec.models],
                          anchor_coords=[tuple(c) for c in ls.model_coords])
    center = stage_buffers(ctx, spec.center)
    if ls.kind == "random" and spec.dir_type == "states":
        moves = (state_directions(center, spec.seed, spec.norm), state_directions(center, spec.seed + 1, spec.norm))
        return GridPoints(plane, ls.axes["x"], ls.axes["y"], buffers=center, buffer_directions=moves)
    return GridPoints(plane, ls.axes["x"], ls.axes["y"], buffers=center)


def make_evaluator(ctx: LogContext, spec: LandscapeSpec, precision: str = "fp32") -> PointEvaluator:
    """The evaluator of ``spec``'s points; ``precision``: the one chosen for the landscape (fp32 | bf16)."""
    clean = ctx.test if spec.data == "test" else ctx.owner
    n = len(clean) if spec.images == 0 else min(spec.images, len(clean))
    bn_images = None
    if spec.bn == "recompute":
        gen = torch.Generator().manual_seed(spec.seed)
        take = torch.randperm(len(ctx.owner), generator=gen)[:spec.bn_batches * 256].to(ctx.owner.images.device)
        bn_images = ctx.owner.images[take]
    cache = Path(ctx.cfg.data.cache_dir) if ctx.cfg.data.cache_dir else default_cache_dir()
    ev = PointEvaluator(ctx.model, clean.images[:n], clean.labels[:n], ctx.trigger_images, ctx.trigger_labels,
                        ctx.normalizer, ctx.memory_format, spec.batch_size, bn_images, cache_dir=cache)
    ev.precision = precision
    return ev


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
