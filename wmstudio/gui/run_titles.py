"""How Compare names a run (Qt-free): its name, told apart from same-named runs by its log's file name,
and flagged when it did not finish; and how it prints a metric's value."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from wmstudio.gui.series import RunSeries
from wmstudio.status import COMPLETE, Status


def metric_fmt(metric: str, value: float) -> str:
    if metric == "p_value":
        return f"{value:.2e}"
    return f"{value:.3f}" if metric.endswith("acc") or metric == "drift_cos" else f"{value:.4g}"


def run_title(series: RunSeries, runs: list[RunSeries] | None = None) -> str:
    """The run's name (with its log's file name when another of ``runs`` has the same name), flagged
    when it did not finish (cancelled, failed, still running, partial stages)."""
    return _title(series, Counter(r.label or r.log_path for r in runs or []))


def run_titles(runs: list[RunSeries]) -> list[str]:
    """:func:`run_title` of every run (the names counted once)."""
    counts = Counter(r.label or r.log_path for r in runs)
    return [_title(r, counts) for r in runs]


def _title(series: RunSeries, counts: Counter[str]) -> str:
    name = series.label or series.log_path
    if counts[name] > 1:
        name = f"{name} ({Path(series.log_path).name})"
    unfinished = [s.name for s in series.stages if s.status not in COMPLETE]
    if series.log_status and series.log_status != Status.FINISHED:
        return f"{name} ⚠ {series.log_status}"
    return f"{name} ⚠ partial ({', '.join(unfinished)})" if unfinished else name
