"""``wmstudio report DIR``: every run of a sweep in one table, and the persistence matrix.

Writes report.csv, report.md, and figures (PNG and SVG): heat maps of trigger accuracy after the
attack and after restoration over the two main swept axes (averaged over any others), and a
scatter of the attack's drift against restored trigger accuracy (does drift predict restorability?).

"Attacked" is whichever attack a run made: fine-tuning, extraction, or an ``[attack] kind`` stage
(``attack.kind`` is an axis like any other). Seed axes (``run.seed``, ``data.split_seed``) are not
shown as axes but replicate each cell: cells.csv and the report give, per cell, the number of
seeds, the mean and a 95% t-interval (``wmstudio.sweep.intervals``) of the trigger accuracy after
the attack and after restoration and of restoration's gain (restored minus attacked, per run), and
the figures carry the seeds count and error bars.

A comparison run in parts (one sweep folder per part, with the same axes) is reported as one:
``wmstudio report PART1 PART2 --out DIR`` (``collect_many``, ``write_report(..., sources=...)``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.errors import RunLogError
from wmstudio.metric_names import metric_label
from wmstudio.sweep.intervals import REPLICATE_AXES, Interval, t_interval
from wmstudio.sweep.records import load_sweep_folder, read_json

COLUMNS = [(key, metric_label(key)) for key in (
    "watermarked.test_acc", "watermarked.trigger_acc", "attacked.test_acc", "attacked.trigger_acc", "gain",
    "attacked.drift_rel", "attacked.p_value", "finetune.test_acc", "finetune.trigger_acc", "restore.test_acc",
    "restore.trigger_acc", "finetune.drift_rel", "restore.drift_rel", "finetune.p_value", "restore.p_value")]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and abs(v) < 1e-3) else f"{v:.4f}"
    return str(v)


def collect(folder: str | Path) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """(sweep meta, axis names, one row per run with its axis values, status and final metrics)."""
    folder = Path(folder)
    meta, records = load_sweep_folder(folder)
    axes = list(meta.get("axes", {}))
    rows = []
    for rec in records:
        row: dict[str, Any] = {"run_id": rec["run_id"], "status": rec.get("status", "pending"),
                               "error": (rec.get("error") or "").splitlines()[0] if rec.get("error") else ""}
        row.update({a: rec.get("values", {}).get(a) for a in axes})
        finals = dict(rec.get("finals") or {})
        embed = read_json(folder / "embeds" / f"{rec.get('embed_id', '')}.json") if rec.get("embed_id") else None
        if embed and embed.get("finals"):
            finals.setdefault("watermarked.test_acc", embed["finals"].get("embed.test_acc"))
            finals.setdefault("watermarked.trigger_acc", embed["finals"].get("embed.trigger_acc"))
        for col in ("test_acc", "trigger_acc", "drift_rel", "drift_l2", "p_value"):  # records older than "attacked"
            finals.setdefault(f"attacked.{col}", finals.get(f"finetune.{col}", finals.get(f"extract.{col}")))
        for key, _ in COLUMNS:
            row[key] = finals.get(key)
        a, r = row.get("attacked.trigger_acc"), row.get("restore.trigger_acc")
        row["gain"] = r - a if a is not None and r is not None else None
        row["seconds"] = rec.get("seconds")
        rows.append(row)
    return meta, axes, rows


def collect_many(folders: list[str | Path]) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """``collect`` over several sweep folders run as parts of one comparison: the rows of all of them. Their axes
    must be the same names (the values may differ: one part may sweep methods the other did not); a run id that
    two parts hold is counted once (the later part's record wins)."""
    if not folders:
        raise RunLogError("report: no sweep folder given")
    metas, axes0, by_id = [], None, {}
    for folder in folders:
        meta, axes, rows = collect(folder)
        if axes0 is None:
            axes0 = axes
        elif set(axes) != set(axes0):
            raise RunLogError(f"{folder}: its axes ({', '.join(axes) or 'none'}) differ from those of {folders[0]} "
                              f"({', '.join(axes0) or 'none'}); a report over several sweep folders needs the same axes")
        metas.append(meta)
        for row in rows:
            by_id[row["run_id"]] = row
    names = [str(m.get("name", "")) for m in metas]
    meta = {"name": " + ".join(n for n in names if n), "parts": [str(f) for f in folders]}
    return meta, list(axes0 or []), list(by_id.values())


def write_csv(path: Path, axes: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", *axes, "status", *[k for k, _ in COLUMNS], "seconds", "error"])
        for r in rows:
            w.writerow([r["run_id"], *[r[a] for a in axes], r["status"], *[_fmt(r[k]) for k, _ in COLUMNS],
                        _fmt(r["seconds"]), r["error"]])


CELL_METRICS = [("attacked.trigger_acc", "trigger acc (attacked)"), ("restore.trigger_acc", "trigger acc (restored)"),
                ("gain", "restoration gain"), ("attacked.test_acc", "test acc (attacked)"),
                ("restore.test_acc", "test acc (restored)")]


def replicate_axes(axes: list[str]) -> list[str]:
    return [a for a in axes if a in REPLICATE_AXES]


def cells(axes: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per combination of the non-seed axes: its values, seeds count and an Interval per CELL_METRICS key
    (finished runs only)."""
    keep = [a for a in axes if a not in REPLICATE_AXES]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "finished":
            groups.setdefault(tuple(repr(r[a]) for a in keep), []).append(r)
    out = []
    for members in groups.values():
        cell: dict[str, Any] = {a: members[0][a] for a in keep}
        cell["n"] = len(members)
        for key, _ in CELL_METRICS:
            cell[key] = t_interval([m[key] for m in members])
        out.append(cell)
    return out


def write_cells_csv(path: Path, axes: list[str], cell_rows: list[dict[str, Any]]) -> None:
    keep = [a for a in axes if a not in REPLICATE_AXES]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*keep, "seeds", *(f"{k}.{part}" for k, _ in CELL_METRICS for part in ("mean", "ci95_lo", "ci95_hi"))])
        for c in cell_rows:
            w.writerow([*(c[a] for a in keep), c["n"],
                        *(_fmt(getattr(c[k], part)) for k, _ in CELL_METRICS for part in ("mean", "lo", "hi"))])


def write_markdown(path: Path, meta: dict[str, Any], axes: list[str], rows: list[dict[str, Any]],
                   figures: list[str]) -> None:
    short = [("watermarked.trigger_acc", "trig (wm)"), ("attacked.trigger_acc", "trig (attacked)"),
             ("restore.trigger_acc", "trig (restored)"), ("gain", "gain"), ("watermarked.test_acc", "test (wm)"),
             ("attacked.test_acc", "test (attacked)"), ("restore.test_acc", "test (restored)"),
             ("attacked.drift_rel", "drift (attack)"), ("restore.p_value", "p (restored)")]
    lines = [f"# Sweep report: {meta.get('name', '')}", ""]
    if meta.get("parts"):
        parts = meta["parts"]
        lines += [(f"Reported together from {len(parts)} sweep folders: " if len(parts) > 1 else "Reported from ")
                  + ", ".join(f"`{p}`" for p in parts) + ".", ""]
    lines += [
             f"{len(rows)} runs over {', '.join(f'`{a}`' for a in axes)}; "
             f"{sum(r['status'] == 'finished' for r in rows)} finished, {sum(r['status'] == 'failed' for r in rows)} failed.",
             ""]
    seeds = replicate_axes(axes)
    if seeds:
        keep = [a for a in axes if a not in REPLICATE_AXES]
        cell_rows = cells(axes, rows)
        lines += ["## Per cell over seeds", "",
                  f"Mean and 95% t-interval over the seeds ({', '.join(f'`{a}`' for a in seeds)}) of each cell; "
                  "gain = restored minus attacked trigger accuracy, per run. An interval needs 2 seeds; one reaching "
                  "outside [0, 1] means the seeds are too few to say.", "",
                  "| " + " | ".join([*(a.split('.')[-1] for a in keep), "seeds", *(h for _, h in CELL_METRICS)]) + " |",
                  "|" + "---|" * (len(keep) + 1 + len(CELL_METRICS))]
        for c in cell_rows:
            lines.append("| " + " | ".join([*(str(c[a]) for a in keep), str(c["n"]),
                                            *(c[k].text() for k, _ in CELL_METRICS)]) + " |")
        lines += ["", "## Every run", ""]
    lines += ["| " + " | ".join([*(a.split('.')[-1] for a in axes), "status", *(h for _, h in short)]) + " |",
              "|" + "---|" * (len(axes) + 1 + len(short))]
    for r in rows:
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error'][:80]}"
        lines.append("| " + " | ".join([*(str(r[a]) for a in axes), status, *(_fmt(r[k]) for k, _ in short)]) + " |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    path.write_text("\n".join(lines) + "\n")


def _sort(values: set) -> list:
    return sorted(values, key=lambda v: (str(type(v)), v))


def _matrix(rows: list[dict[str, Any]], row_axis: str, col_axis: str, key: str
            ) -> tuple[list, list, np.ndarray, list[list[Interval | None]]]:
    """Means over the runs of each (row, column) cell, and each cell's t-interval (its runs: seeds and any other axes)."""
    rv = _sort({r[row_axis] for r in rows})
    cv = _sort({r[col_axis] for r in rows}) if col_axis else [""]
    m = np.full((len(rv), len(cv)), np.nan)
    ci: list[list[Interval | None]] = [[None] * len(cv) for _ in rv]
    for i, a in enumerate(rv):
        for j, b in enumerate(cv):
            vals = [r[key] for r in rows if r[row_axis] == a and (not col_axis or r[col_axis] == b)
                    and r[key] is not None]
            if vals:
                m[i, j] = float(np.mean(vals))
                ci[i][j] = t_interval(vals)
    return rv, cv, m, ci


def draw_figures(folder: Path, axes_all: list[str], rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "finished"]
    if not done:
        return []
    shown = [a for a in axes_all if a not in REPLICATE_AXES]
    seeds = [a for a in replicate_axes(axes_all) if len({r[a] for r in rows}) > 1]
    swept = [a for a in shown if len({r[a] for r in rows}) > 1] or shown[:1] or axes_all[:1]
    row_axis = swept[0]
    col_axis = swept[1] if len(swept) > 1 and swept[1] != row_axis else ""
    if col_axis and len({r[col_axis] for r in done}) > len({r[row_axis] for r in done}):
        row_axis, col_axis = col_axis, row_axis  # the longer axis down the side, where its labels fit
    others = [a for a in swept[2:]] + seeds
    written: list[str] = []
    n_rows = len({r[row_axis] for r in done})
    n_cols = len({r[col_axis] for r in done}) if col_axis else 1
    fig, axs = plt.subplots(1, 2, figsize=(max(11.0, 2 * 1.3 * n_cols + 4), max(4.2, 0.55 * n_rows + 1.8)),
                            constrained_layout=True)
    for ax, (key, title) in zip(axs, (("attacked.trigger_acc", "trigger accuracy after the attack"),
                                      ("restore.trigger_acc", "trigger accuracy after restoration")), strict=True):
        rv, cv, m, ci = _matrix(done, row_axis, col_axis, key)
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(rv)), [str(v) for v in rv])
        ax.set_xticks(range(len(cv)), [str(v) for v in cv])
        ax.set_ylabel(row_axis)
        ax.set_xlabel(col_axis or "")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                c = ci[i][j]
                if np.isfinite(m[i, j]) and c is not None:
                    text = f"{m[i, j]:.2f}" + (f"\n±{c.half_width:.2f} (n={c.n})" if seeds and c.n > 1 else "")
                    ax.text(j, i, text, ha="center", va="center", color="black" if m[i, j] > 0.6 else "white",
                            fontsize=8 if seeds else 9)
        ax.set_title(title + (f"\n(mean over {', '.join(others)}" + ("; ± 95% t-interval" if seeds else "") + ")"
                              if others else ""), fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85)
    for ext in ("png", "svg"):
        p = folder / f"persistence_matrix.{ext}"
        _save_figure(fig, p, 130)
        written.append(str(p))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    group = row_axis if "scheme" in row_axis or "kind" in row_axis or not col_axis else col_axis
    for k, value in enumerate(sorted({r[group] for r in done}, key=str)):
        pts = [(r["attacked.drift_rel"], r["restore.trigger_acc"], r["attacked.trigger_acc"]) for r in done
               if r[group] == value and r["attacked.drift_rel"] is not None and r["restore.trigger_acc"] is not None
               and r["attacked.trigger_acc"] is not None]
        if pts:
            d, restored, attacked = np.asarray(pts, dtype=float).T
            ax.scatter(d, restored, label=f"{group.split('.')[-1]}={value}", color=f"C{k % 10}", s=40)
            ax.scatter(d, attacked, color=f"C{k % 10}", s=18, marker="x", alpha=0.6)
    ax.set_xlabel("relative weight drift after the attack (L2 / ||watermarked||)")
    ax.set_ylabel("trigger accuracy  (o restored, x attacked)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Does drift predict restorability?", fontsize=10)
    ax.legend(fontsize=8)
    for ext in ("png", "svg"):
        p = folder / f"drift_vs_restored.{ext}"
        _save_figure(fig, p, 130)
        written.append(str(p))
    plt.close(fig)
    if seeds:
        written += _interval_figure(folder, axes_all, rows, plt)
    return written


def _interval_figure(folder: Path, axes_all: list[str], rows: list[dict[str, Any]], plt: Any) -> list[str]:
    """Per cell: attacked and restored trigger accuracy, and restoration's gain, as means with 95% error bars.

    With two or more swept axes the cells are split into one row of panels per value of the axis with the
    fewest values (e.g. one row per embedding method, the attacks along it), so that the labels stay
    readable; with one, a single row of panels.
    """
    keep = [a for a in axes_all if a not in REPLICATE_AXES and len({r[a] for r in rows}) > 1]
    cell_rows = cells(keep + replicate_axes(axes_all), rows)
    ns = [c["n"] for c in cell_rows]
    facet = min(keep, key=lambda a: len({c[a] for c in cell_rows})) if len(keep) > 1 else ""
    along = [a for a in keep if a != facet]
    groups = _sort({c[facet] for c in cell_rows}) if facet else [None]
    per_group = max(len([c for c in cell_rows if not facet or c[facet] == g]) for g in groups)
    fig, axs = plt.subplots(len(groups), 2, figsize=(max(10.0, 1.1 * per_group + 3), 2.4 * len(groups) + 1.2),
                            squeeze=False, sharey="col", constrained_layout=True,
                            gridspec_kw={"width_ratios": [2, 1]})
    for row, group in enumerate(groups):
        members = [c for c in cell_rows if not facet or c[facet] == group]
        x = np.arange(len(members))
        labels = [", ".join(str(c[a]) for a in along) or "all" for c in members]
        top, right = axs[row]

        def bars(ax: Any, key: str, offset: float, width: float, label: str, color: str,
                 members: list[dict[str, Any]] = members, x: np.ndarray = x) -> None:
            iv = [c[key] for c in members]
            mean = np.array([v.mean for v in iv])
            err = np.array([v.half_width if v.n > 1 else 0.0 for v in iv])
            ax.bar(x + offset, mean, width, yerr=err, capsize=2, label=label, color=color,
                   error_kw={"elinewidth": 0.8})

        bars(top, "attacked.trigger_acc", -0.2, 0.4, "after the attack", "C3")
        bars(top, "restore.trigger_acc", 0.2, 0.4, "after restoration", "C2")
        top.set_ylim(0, 1.05)
        top.set_ylabel("trigger accuracy", fontsize=8)
        top.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        top.set_title(f"{facet.split('.')[-1]} = {group}" if facet else "trigger accuracy", fontsize=9, loc="left")
        bars(right, "gain", 0.0, 0.6, "restored - attacked", "C0")
        right.axhline(0, color="black", lw=0.8)
        right.set_ylabel("restoration gain", fontsize=8)
        right.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        if row == 0:
            top.legend(fontsize=7, loc="lower left")
    seeds = ", ".join(replicate_axes(axes_all))
    fig.suptitle(f"Mean over seeds ({seeds}) with 95% t-intervals; seeds per cell: {min(ns)}"
                 + (f"-{max(ns)}" if max(ns) != min(ns) else ""), fontsize=10)
    written = []
    for ext in ("png", "svg"):
        p = folder / f"seed_intervals.{ext}"
        _save_figure(fig, p, 110)
        written.append(str(p))
    plt.close(fig)
    return written


REPORT_FILES = ("report.csv", "report.md", "cells.csv", *(f"{name}.{ext}" for name in
                ("persistence_matrix", "drift_vs_restored", "seed_intervals") for ext in ("png", "svg")))


def _save_figure(fig: Any, path: Path, dpi: int) -> None:
    """A figure written aside and renamed, never through a link (the report's files were checked up front)."""
    from wmstudio.safe_files import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi)


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
    if replicate_axes(axes):
        out["cells"] = cells(axes, rows)
        with atomic_output(folder / "cells.csv", overwrite=True) as tmp:
            write_cells_csv(tmp, axes, out["cells"])
        out["cells_csv"] = str(folder / "cells.csv")
    with atomic_output(folder / "report.md", overwrite=True) as tmp:
        write_markdown(tmp, meta, axes, rows, [f for f in figures if f.endswith(".png")])
    return out
