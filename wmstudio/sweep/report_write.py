"""The sweep report written into a folder: report.csv, cells.csv, comparisons.csv, report.md and the
figures, from the rows ``wmstudio.sweep.report`` collects (the figures and the Markdown each in their
own module, which read the report's helpers; this module is the only one that calls all three)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmstudio.sweep.report import (
    REPORT_FILES,
    cells,
    collect,
    collect_many,
    comparisons,
    replicate_axes,
    write_cells_csv,
    write_comparisons_csv,
    write_csv,
)
from wmstudio.sweep.report_figures import draw_figures
from wmstudio.sweep.report_markdown import write_markdown


def write_report(folder: str | Path, sources: list[str | Path] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write the report into ``folder``, over the sweep in it, or over the sweep folders ``sources`` (parts of one
    comparison) when given. A folder that holds report files already (``REPORT_FILES``) is refused, before
    anything is written, unless ``overwrite``; every file is written aside and renamed (``safe_files``)."""
    from wmstudio.safe_files import atomic_output, check_targets, make_folder

    folder = Path(folder)
    check_targets([folder / name for name in REPORT_FILES], overwrite)
    if sources:
        meta, axes, rows = collect_many(sources)
        make_folder(folder)
    else:
        meta, axes, rows = collect(folder)
    figures = draw_figures(folder, axes, rows)
    with atomic_output(folder / "report.csv", overwrite=True) as tmp:
        write_csv(tmp, axes, rows)
    out = {"rows": rows, "axes": axes, "figures": figures, "csv": str(folder / "report.csv"),
           "markdown": str(folder / "report.md")}
    out["excluded"] = [r["run_id"] for r in rows if r.get("excluded")]
    if replicate_axes(axes):
        out["cells"] = cells(axes, rows)
        with atomic_output(folder / "cells.csv", overwrite=True) as tmp:
            write_cells_csv(tmp, axes, out["cells"])
        out["cells_csv"] = str(folder / "cells.csv")
        out["comparisons"] = comparisons(axes, out["cells"])
        if out["comparisons"]:
            with atomic_output(folder / "comparisons.csv", overwrite=True) as tmp:
                write_comparisons_csv(tmp, out["comparisons"])
            out["comparisons_csv"] = str(folder / "comparisons.csv")
    if meta.get("decision"):
        out.update(_write_decision(folder, meta, axes, rows))
    with atomic_output(folder / "report.md", overwrite=True) as tmp:
        write_markdown(tmp, meta, axes, rows, [f for f in figures if f.endswith(".png")],
                       out.get("cells"), out.get("comparisons"))
    return out


def _write_decision(folder: Path, meta: dict[str, Any], axes: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """decision.md and decision.json: the sweep file's declared rule applied to the runs (sweep/decisions.py)."""
    import json

    from wmstudio.errors import ConfigError, RunLogError
    from wmstudio.safe_files import atomic_output
    from wmstudio.sweep.decisions import decide, markdown

    try:
        result = decide(meta["decision"], axes, rows)
    except ConfigError as exc:  # sweep.json may come from someone else: name it
        raise RunLogError(f"{folder / 'sweep.json'}: {exc}") from None
    with atomic_output(folder / "decision.md", overwrite=True) as tmp:
        tmp.write_text(markdown(result), encoding="utf-8")
    with atomic_output(folder / "decision.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(_no_nan(result), indent=1, default=str, allow_nan=False) + "\n", encoding="utf-8")
    return {"decision": result, "decision_md": str(folder / "decision.md")}


def _no_nan(v: Any) -> Any:  # noqa: ANN401 - JSON data
    """NaN (a p-value not computed) as null: strict JSON."""
    import math

    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_no_nan(x) for x in v]
    return v
