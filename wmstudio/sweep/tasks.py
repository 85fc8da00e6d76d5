"""One run of a sweep, as executed on a Ray worker (a plain function: Ray imports it by name)."""

from __future__ import annotations

import math
import time
import traceback
from typing import Any

EMBED_STAGES = ["pretrain", "embed"]
ATTACK_STAGES = ["finetune", "extract", "attack", "restore"]
ATTACKS = ("finetune", "extract", "attack")  # the stages an attack run's "attacked" metrics come from


def finals(log: str) -> dict[str, float]:
    """Each stage's final test/trigger accuracy, drift and p-value, flat, for records and reports."""
    from wmstudio.runlog import RunLogReader

    reader = RunLogReader(log)
    out: dict[str, float] = {}
    for rec in reader.stages():
        for col in ("test_acc", "trigger_acc", "drift_rel", "drift_l2", "p_value"):
            out[f"{rec.name}.{col}"] = rec.final(col)
            if rec.name in ATTACKS:  # whichever attack ran: the report's "attacked" columns
                out[f"attacked.{col}"] = rec.final(col)
        if rec.name == "finetune" and len(rec.eval.get("trigger_acc", [])):
            out["watermarked.trigger_acc"] = float(rec.eval["trigger_acc"][0])  # the stage's starting point
            out["watermarked.test_acc"] = float(rec.eval["test_acc"][0])
        if rec.name == "attack":  # the attack recorded the watermarked model's accuracies before it
            before = (reader.stage_json("attack", "attack_json") or {}).get("before", {})
            out.update({f"watermarked.{k}": float(v) for k, v in before.items()})
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}  # type: ignore[misc]


def run_task(kind: str, plan: dict[str, Any], log: str, threads: int, embed_log: str = "",
             embed_record: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from wmstudio.config import load_config
    from wmstudio.pipeline import run_experiment

    start = time.time()
    record: dict[str, Any] = {"run_id": plan["run_id"], "kind": kind, "values": plan["values"], "log": log,
                              "embed_id": plan.get("embed_id", ""), "started": start}
    try:
        if embed_record is not None and embed_record.get("status") != "finished":
            raise RuntimeError(f"its watermarked model (embed {embed_record.get('run_id')}) did not finish: "
                               f"{embed_record.get('error') or embed_record.get('status')}")
        torch.set_num_threads(max(1, threads))
        cfg = load_config(data=plan["config"])
        cfg.run.threads = max(1, threads)
        if kind == "embed":
            result = run_experiment(cfg, log, stages=EMBED_STAGES, overwrite=True)
        elif embed_log:
            cfg.model.checkpoint = f"{embed_log}:embed"
            result = run_experiment(cfg, log, stages=ATTACK_STAGES, trigger_from=embed_log, overwrite=True)
        else:  # no shared embed (embedding disabled): the run's own pipeline
            result = run_experiment(cfg, log, overwrite=True)
        record.update(status=result.status, error=result.message if result.status != "finished" else "")
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["seconds"] = time.time() - start
    try:
        record["finals"] = finals(log)
    except Exception:  # noqa: BLE001 - no log (failed before it was written)
        record["finals"] = {}
    return record
