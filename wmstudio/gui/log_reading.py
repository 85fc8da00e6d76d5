"""Everything the app shows of a run log, read in one go on a worker thread (never the UI's).

Qt-free: ``read_snapshot`` runs inside a ``JobThread`` and its result is handed to the UI thread.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmstudio.errors import WmStudioError
from wmstudio.gui.series import RunSeries


@dataclass
class LogSnapshot:
    path: Path
    series: RunSeries
    config: dict[str, Any] = field(default_factory=dict)
    trigger: tuple[Any, Any, str, Any] | None = None  # images, labels, scheme, class names
    landscapes: list[str] = field(default_factory=list)
    landscape: Any = None  # the first stored landscape (wmstudio.landscape.store.Landscape)
    summary: str = ""
    stages_with_weights: list[str] = field(default_factory=list)


def read_landscapes(path: Path, wanted: str = "") -> tuple[list[str], Any]:
    """The stored landscape names and one of them (``wanted``, else the first; None if there are none)."""
    from wmstudio.landscape import list_landscapes, read

    try:
        names = list_landscapes(path)
    except (WmStudioError, OSError):
        return [], None
    if not names:
        return names, None
    return names, read(path, wanted if wanted in names else names[0])


def read_snapshot(path: str | Path) -> LogSnapshot:
    """The series, config, trigger set, landscapes and summary of one log (raises WmStudioError, OSError)."""
    from wmstudio.inspect_log import summarize
    from wmstudio.runlog_reader import RunLogReader

    path = Path(path)
    series = RunSeries.from_log(path)
    snap = LogSnapshot(path, series)
    reader = RunLogReader(path)
    with contextlib.suppress(WmStudioError, OSError):
        from wmstudio.config_io import anchor_paths

        # relative data paths as the run read them (it may have been started in another folder)
        snap.config = anchor_paths(json.loads(reader.config_json), reader.working_dir())
    try:
        t = reader.trigger()
        snap.trigger = (t["images"], t["labels"], str(t["scheme"]), reader.data_info().get("classes"))
    except (WmStudioError, OSError, KeyError):
        pass
    snap.landscapes, snap.landscape = read_landscapes(path)
    with contextlib.suppress(WmStudioError, OSError, KeyError):
        snap.stages_with_weights = [n for n in reader.stage_names() if reader.weights_status(n)[0]]
    with contextlib.suppress(WmStudioError, OSError, KeyError):
        snap.summary = summarize(str(path))
    return snap
