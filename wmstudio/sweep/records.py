"""What a sweep folder holds: one JSON record per run and per shared embed, written atomically.

```
DIR/sweep.json              the expanded sweep (spec, runs, axes)
DIR/embeds/<embed_id>.h5    the shared watermarked models (pretrain + embed stages)
DIR/embeds/<embed_id>.json
DIR/runs/<run_id>.h5        each attack: fine-tune + restore, starting from its embed
DIR/runs/<run_id>.json      {run_id, values, status: queued|running|finished|failed|cancelled, error, seconds,
                             ran_on: {node, host, pid}, attempts: [{error, ran_on, at}], bytes_returned,
                             finals: {...}, ...}
```

``finals`` (``finals(log)``): per stage (``embed``, ``finetune``, ``attack``, ``restore``, ...) and as
``attacked.*`` for whichever attack ran, and ``watermarked.*`` for the model the attack started from:
``test_acc``, ``trigger_acc``, ``drift_rel``, ``drift_l2``, ``p_value``, and where the log records them
``control_acc`` (trigger labels given to the control images), ``trigger_effect`` (trigger accuracy -
control rate), ``majority_share`` and ``collapsed`` (1.0 flagged); missing ones are None ("not
recorded"). Besides them: ``n_trigger`` and ``n_test`` (the counts each accuracy is a proportion of),
``num_classes``, and the seeds the run used: ``seed.run``, ``seed.trigger`` (the stored trigger set's),
``seed.split`` (all None in records written before they were recorded). A run with a restoration
also has ``restore.peak_trigger_acc`` and ``restore.peak_trigger_effect`` (the best evaluation along
it) with ``..._at`` (its epoch).

Only the driver writes here; workers stream their logs back through Ray (see ``wmstudio.sweep.tasks``).
A folder may come from someone else: ``load_sweep_folder`` checks sweep.json and every record's
types (``check_meta``, ``check_record``) and JSON size and depth before the report uses them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.errors import RunLogError
from wmstudio.metric_names import STAGE_COLUMNS
from wmstudio.stage_order import ATTACK_STAGES
from wmstudio.status import Status


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A record, replaced in one step and never written through a link (``safe_files.write_text``)."""
    from wmstudio.safe_files import write_text

    write_text(path, json.dumps(data, indent=1, default=str), overwrite=True)


MAX_JSON_BYTES = 64 * 2**20
MAX_RUNS = 1_000_000
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]{0,199}")
STATUSES = (Status.QUEUED, Status.RUNNING, Status.FINISHED, Status.FAILED, Status.CANCELLED, Status.PENDING)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from the folder (size and nesting bounded), or None: missing, unreadable or not an object."""
    from wmstudio.safejson import loads

    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        data = loads(path.read_bytes(), str(path), RunLogError)
    except (OSError, RunLogError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_meta(folder: Path, meta: dict[str, Any]) -> None:
    """sweep.json: runs a list of {run_id: a plain name, values: {axis: value}}, axes an object, name text."""
    def bad(field: str, expected: str) -> RunLogError:
        return RunLogError(f"{folder / 'sweep.json'}: {field}: expected {expected}")

    runs = meta.get("runs", [])
    if not isinstance(runs, list) or len(runs) > MAX_RUNS:
        raise bad("runs", f"a list of at most {MAX_RUNS:,} runs")
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or not isinstance(r.get("run_id"), str) or not _ID.fullmatch(r["run_id"]) \
                or ".." in r["run_id"]:
            raise bad(f"runs[{i}].run_id", "a plain file name (letters, digits, . _ = + , -)")
        if not isinstance(r.get("values", {}), dict):
            raise bad(f"runs[{i}].values", "an object {axis: value}")
    if not isinstance(meta.get("axes", {}), dict):
        raise bad("axes", "an object {axis: values}")
    if not isinstance(meta.get("name", ""), str):
        raise bad("name", "text")
    parts = meta.get("parts", [])
    if not isinstance(parts, list) or not all(isinstance(x, str) for x in parts):
        raise bad("parts", "a list of folder names")


def check_record(path: Path, rec: dict[str, Any], run_id: str) -> None:
    """runs/<run_id>.json: its run_id, status, error, values, finals and seconds of the documented types."""
    def bad(field: str, expected: str) -> RunLogError:
        return RunLogError(f"{path}: {field}: expected {expected}, got {rec.get(field)!r:.60}")

    if rec.get("run_id", run_id) != run_id:
        raise bad("run_id", f"{run_id!r} (the name in sweep.json)")
    if rec.get("status", Status.PENDING) not in STATUSES:
        raise bad("status", " | ".join(STATUSES))
    if not isinstance(rec.get("error") or "", str):
        raise bad("error", "text")
    if not isinstance(rec.get("values", {}), dict):
        raise bad("values", "an object {axis: value}")
    finals = rec.get("finals") or {}
    if not isinstance(finals, dict) or not all(isinstance(k, str) and _number(v) for k, v in finals.items()):
        raise bad("finals", "an object {metric: number}")
    if not _number(rec.get("seconds")):
        raise bad("seconds", "a number")
    embed = rec.get("embed_id")
    if embed is not None and not (isinstance(embed, str) and (embed == "" or (_ID.fullmatch(embed) and ".." not in embed))):
        raise bad("embed_id", "a plain file name")


def is_finished(record_path: Path, log_path: Path) -> bool:
    """Finished by its record and by its log (a log that was deleted or damaged is run again)."""
    rec = read_json(record_path)
    if not rec or rec.get("status") != Status.FINISHED or not log_path.is_file():
        return False
    from wmstudio.runlog_reader import RunLogReader

    try:
        return RunLogReader(log_path).status == Status.FINISHED
    except (RunLogError, OSError):
        return False


def load_sweep_folder(folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    folder = Path(folder)
    meta = read_json(folder / "sweep.json")
    if meta is None:
        raise RunLogError(f"{folder}: not a sweep folder (no sweep.json); run `wmstudio sweep FILE --out {folder}`")
    check_meta(folder, meta)
    records = []
    for r in meta.get("runs", []):
        path = folder / "runs" / f"{r['run_id']}.json"
        rec = read_json(path)
        if rec is None:
            rec = {**r, "status": str(Status.PENDING)}
        else:
            check_record(path, rec, r["run_id"])
            rec.setdefault("run_id", r["run_id"])
        records.append(rec)
    return meta, records


def refresh_finals(folder: str | Path) -> int:
    """Re-derive every finished run's and embed's ``finals`` from its run log (records written by an older
    version lack newer columns such as the control rate); returns how many records were rewritten.
    Records whose log is missing keep what they hold."""
    folder = Path(folder)
    load_sweep_folder(folder)  # refuses a folder that is not a sweep
    done = 0
    for kind in ("runs", "embeds"):
        for rec_path in sorted((folder / kind).glob("*.json")):
            rec = read_json(rec_path)
            log = rec_path.with_suffix(".h5")
            if not rec or rec.get("status") != Status.FINISHED or not log.is_file():
                continue
            rec["finals"] = finals(log)
            write_json(rec_path, rec)
            done += 1
    return done


def finals(log: str | Path) -> dict[str, Any]:
    """Each stage's final metrics, flat, with the run's counts and seeds, for records and reports (see above)."""
    from wmstudio.runlog_reader import RunLogReader

    reader = RunLogReader(log)
    out: dict[str, Any] = {}
    for rec in reader.stages():
        for col in STAGE_COLUMNS:
            out[f"{rec.name}.{col}"] = rec.final(col)
            if rec.name in ATTACK_STAGES:  # whichever attack ran: the report's "attacked" columns
                out[f"attacked.{col}"] = rec.final(col)
        if rec.name == "finetune" and len(rec.eval.get("trigger_acc", [])):
            for col in STAGE_COLUMNS:  # the stage's first evaluation is its starting point
                if len(rec.eval.get(col, [])) and col not in ("drift_rel", "drift_l2"):
                    out[f"watermarked.{col}"] = float(rec.eval[col][0])
        if rec.name == "restore":  # the peak along the restoration, beside its end (the peak decides nothing)
            out.update(_peaks(rec))
        if rec.name == "attack":  # the attack recorded the watermarked model's accuracies before it
            before = (reader.stage_json("attack", "attack_json") or {}).get("before", {})
            out.update({f"watermarked.{k}": float(v) for k, v in before.items() if isinstance(v, (int, float))})
    out.update(_counts_and_seeds(reader))
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _peaks(rec: Any) -> dict[str, Any]:
    """restore.peak_trigger_acc / peak_trigger_effect and where along the stage they were (its eval x: epochs)."""
    out: dict[str, Any] = {}
    x = rec.eval.get("epoch")
    for col in ("trigger_acc", "trigger_effect"):
        values = rec.eval.get(col)
        if values is None or not len(values) or not np.isfinite(values).any():
            continue
        i = int(np.nanargmax(values))
        out[f"restore.peak_{col}"] = float(values[i])
        if x is not None and len(x) == len(values):
            out[f"restore.peak_{col}_at"] = float(x[i])
    return out


def _counts_and_seeds(reader: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        info = reader.data_info()
        out["num_classes"] = int(info["num_classes"])
        out["seed.split"] = int(info["split_seed"]) if info.get("split_seed") is not None else None
        out["n_test"] = int(len(reader.splits()["test"]))
        cfg = json.loads(reader.config_json)
        out["seed.run"] = int(cfg["run"]["seed"])
        if reader.has("trigger"):
            t = reader.trigger()
            out["n_trigger"] = int(len(t["labels"]))
            out["seed.trigger"] = int(t["seed"])
    except (RunLogError, KeyError, TypeError, ValueError, OSError):
        pass  # a log that stopped before its data or triggers were written: the counts are not recorded
    return out
