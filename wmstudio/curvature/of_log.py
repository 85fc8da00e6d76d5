"""Curvature of a stage's model read from a run log, stored back into that log (``wmstudio curvature``).

Kept apart from ``wmstudio.curvature.job`` (which the training loop uses at stage ends): rebuilding a
model from a log goes through ``wmstudio.landscape.context``, which the training loop must not import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from wmstudio.control import RunControl
from wmstudio.curvature.job import CostEstimate, CurvatureSpec, loss_inputs, run, store
from wmstudio.errors import RunLogError
from wmstudio.events import EventCallback, ignore


def curvature_of_log(log_path: str | Path, stage: str, spec: CurvatureSpec, device: str = "auto",
                     trust_code: bool = False, callback: EventCallback = ignore, control: RunControl | None = None,
                     on_estimate: Callable[[CostEstimate], None] | None = None) -> dict[str, Any]:
    """Measure a stage's model of a run log and store the result in that log (as its only writer meanwhile)."""
    from wmstudio.landscape.context import load_context
    from wmstudio.log_lock import WriterLock
    from wmstudio.runlog import RunLogWriter

    spec.check()
    with WriterLock(log_path) as lock:
        ctx = load_context(log_path, device, trust_code)
        have = ctx.stages_with_weights()
        if stage not in have:
            raise RunLogError(f"{log_path}: stage {stage!r} has no saved weights (stages with weights: "
                              f"{', '.join(have) or 'none'})")
        ctx.model.load_state_dict(ctx.state(stage))
        ctx.model.float()
        if spec.loss == "clean":
            x, y = loss_inputs(ctx.test.images, ctx.test.labels, ctx.normalizer, spec.images)
        else:
            if len(ctx.trigger_labels) == 0:
                raise RunLogError(f"{log_path}: the log holds no trigger set (--loss trigger needs one)")
            x, y = loss_inputs(ctx.trigger_images, ctx.trigger_labels, ctx.normalizer)
        result = run(ctx.model, x, y, spec, stage, callback, control, on_estimate)
        store(RunLogWriter(log_path, lock), stage, spec.key, result)
        return result
