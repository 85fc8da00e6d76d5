"""What a sweep folder holds: one JSON record per run and per shared embed, written atomically.

```
DIR/sweep.json              the expanded sweep (spec, runs, axes)
DIR/embeds/<embed_id>.h5    the shared watermarked models (pretrain + embed stages)
DIR/embeds/<embed_id>.json
DIR/runs/<run_id>.h5        each attack: fine-tune + restore, starting from its embed
DIR/runs/<run_id>.json      {run_id, values, status: queued|running|finished|failed|cancelled, error, seconds,
                             ran_on: {node, host, pid}, attempts: [{error, ran_on, at}], bytes_returned, ...}
```

Only the driver writes here; workers stream their logs back through Ray (see ``wmstudio.sweep.tasks``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wmstudio.errors import RunLogError


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A record, replaced in one step and never written through a link (``safe_files.write_text``)."""
    from wmstudio.safe_files import write_text

    write_text(path, json.dumps(data, indent=1, default=str), overwrite=True)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_finished(record_path: Path, log_path: Path) -> bool:
    """Finished by its record and by its log (a log that was deleted or damaged is run again)."""
    rec = read_json(record_path)
    if not rec or rec.get("status") != "finished" or not log_path.is_file():
        return False
    from wmstudio.runlog import RunLogReader

    try:
        return RunLogReader(log_path).status == "finished"
    except (RunLogError, OSError):
        return False


def load_sweep_folder(folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    folder = Path(folder)
    meta = read_json(folder / "sweep.json")
    if meta is None:
        raise RunLogError(f"{folder}: not a sweep folder (no sweep.json); run `wmstudio sweep FILE --out {folder}`")
    records = []
    for r in meta.get("runs", []):
        rec = read_json(folder / "runs" / f"{r['run_id']}.json") or {**r, "status": "pending"}
        records.append(rec)
    return meta, records
