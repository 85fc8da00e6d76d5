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
    with atomic_output(folder / "report.md", overwrite=True) as tmp:
        write_markdown(tmp, meta, axes, rows, [f for f in figures if f.endswith(".png")],
                       out.get("cells"), out.get("comparisons"))
    return out
