"""The sweep report's figures: the persistence matrix, drift against the restored trigger accuracy, and the
cells over seeds with their intervals and controls (PNG and SVG beside report.md; see ``wmstudio.sweep.report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.status import Status
from wmstudio.sweep.intervals import (
    ATANH_T,
    LOGIT_T,
    REPLICATE_AXES,
    Interval,
    newcombe,
    seed_interval,
    wilson_of,
)
from wmstudio.sweep.report import cells, included_rows, metric_args, replicate_axes


def _sort(values: set) -> list:
    return sorted(values, key=lambda v: (str(type(v)), v))


def _matrix(rows: list[dict[str, Any]], row_axis: str, col_axis: str, key: str
            ) -> tuple[list, list, np.ndarray, list[list[Interval | None]]]:
    """Means over the runs of each (row, column) cell, and each cell's logit-t interval (its runs: seeds and any other
    axes)."""
    rv = _sort({r[row_axis] for r in rows})
    cv = _sort({r[col_axis] for r in rows}) if col_axis else [""]
    m = np.full((len(rv), len(cv)), np.nan)
    ci: list[list[Interval | None]] = [[None] * len(cv) for _ in rv]
    for i, a in enumerate(rv):
        for j, b in enumerate(cv):
            members = [r for r in rows if r[row_axis] == a and (not col_axis or r[col_axis] == b)
                       and r[key] is not None]
            if members:
                m[i, j] = float(np.mean([r[key] for r in members]))
                ci[i][j] = seed_interval(**metric_args(key, members))
    return rv, cv, m, ci


def drift_points(rows: list[dict[str, Any]], stage: str, with_control: bool) -> np.ndarray:
    """Per run (drift after the attack, y, y's 95% interval): y is the watermark effect after ``stage``
    (trigger accuracy - control, Newcombe's interval of the difference, each of ``n_trigger``), or the
    trigger accuracy with Wilson's interval where ``with_control`` is False (logs without a control)."""
    out = []
    for r in rows:
        d, acc, n = r.get("attacked.drift_rel"), r.get(f"{stage}.trigger_acc"), r.get("n_trigger")
        if d is None or acc is None:
            continue
        if with_control:
            c = newcombe(acc, r.get(f"{stage}.control_acc"), n, n)
        else:
            c = wilson_of(acc, n)
        y = c.mean if c.n else (acc - (r.get(f"{stage}.control_acc") or 0.0) if with_control else acc)
        out.append((d, y, c.lo if c.n else y, c.hi if c.n else y))
    return np.asarray(out, dtype=float).reshape(-1, 4)


def draw_figures(folder: Path, axes_all: list[str], rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    finished = [r for r in rows if r["status"] == Status.FINISHED]
    done = included_rows(rows)
    if not done:
        return []
    flagged = [r for r in finished if r.get("excluded")]
    excluded_note = f"; {len(flagged)} collapsed run{'s' if len(flagged) != 1 else ''} excluded" if flagged else ""
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
        drift = np.array([[np.mean(x) if (x := [r["attacked.drift_rel"] for r in done if r[row_axis] == a
                                                and (not col_axis or r[col_axis] == b)
                                                and r["attacked.drift_rel"] is not None]) else np.nan
                           for b in cv] for a in rv])
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(rv)), [str(v) for v in rv])
        ax.set_xticks(range(len(cv)), [str(v) for v in cv])
        ax.set_ylabel(row_axis)
        ax.set_xlabel(col_axis or "")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                c = ci[i][j]
                if np.isfinite(m[i, j]) and c is not None:
                    text = f"{m[i, j]:.2f}" + (f"\n[{c.lo:.2f}, {c.hi:.2f}] n={c.n}" if seeds and c.n > 1 else "")
                    if key == "attacked.trigger_acc" and np.isfinite(drift[i, j]):
                        text += f"\ndrift {drift[i, j]:.2f}"
                    ax.text(j, i, text, ha="center", va="center", color="black" if m[i, j] > 0.6 else "white",
                            fontsize=7 if seeds else 9)
        ax.set_title(title + (f"\n(mean over {', '.join(others)}" + (f"; [{LOGIT_T}]" if seeds else "") + ")"
                              if others else "") + excluded_note.replace("; ", "\n", 1), fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85)
    for ext in ("png", "svg"):
        p = folder / f"persistence_matrix.{ext}"
        _save_figure(fig, p, 130)
        written.append(str(p))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    group = row_axis if "scheme" in row_axis or "kind" in row_axis or not col_axis else col_axis
    with_control = all(r.get("restore.control_acc") is not None for r in done)
    for k, value in enumerate(sorted({r[group] for r in done}, key=str)):
        members = [r for r in done if r[group] == value]
        for stage, marker, size, alpha in (("attacked", "x", 22, 0.6), ("restore", "o", 40, 1.0)):
            pts = drift_points(members, stage, with_control)
            if len(pts):
                d, y, lo, hi = pts.T
                ax.errorbar(d, y, yerr=[y - lo, hi - y], fmt="none", ecolor=f"C{k % 10}", alpha=0.35 * alpha,
                            elinewidth=1)
                ax.scatter(d, y, color=f"C{k % 10}", s=size, marker=marker, alpha=alpha,
                           label=f"{group.split('.')[-1]}={value}" if stage == "restore" else None)
    pts = drift_points(flagged, "restore", with_control)
    if len(pts):
        ax.scatter(pts[:, 0], pts[:, 1], facecolors="none", edgecolors="grey", s=40, label="collapsed (excluded)")
    ax.set_xlabel("relative weight drift after the attack (L2 / ||watermarked||)")
    what = "watermark effect (trigger acc - control)" if with_control else "trigger accuracy (no control recorded)"
    ax.set_ylabel(f"{what}\n(o restored, x attacked; bars: 95% {'Newcombe' if with_control else 'Wilson'})")
    ax.set_ylim(-0.1 if with_control else -0.03, 1.03)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_title("Does drift predict restorability?" + (f"\n(grey: {len(flagged)} collapsed runs, excluded from "
                                                         "every cell)" if flagged else ""), fontsize=10)
    ax.legend(fontsize=8)
    for ext in ("png", "svg"):
        p = folder / f"drift_vs_restored.{ext}"
        _save_figure(fig, p, 130)
        written.append(str(p))
    plt.close(fig)
    if seeds:
        written += _interval_figure(folder, axes_all, rows, plt, len(flagged))
    return written


def _interval_figure(folder: Path, axes_all: list[str], rows: list[dict[str, Any]], plt: Any,
                     excluded: int = 0) -> list[str]:
    """Per cell: attacked and restored trigger accuracy (logit-t 95% error bars) and restoration's gain (atanh-t
    95%), as means over the seeds; collapsed runs are not in them.

    With two or more swept axes the cells are split into one row of panels per value of the axis with the
    fewest values (e.g. one row per embedding method, the attacks along it), so that the labels stay
    readable; with one, a single row of panels.
    """
    keep = [a for a in axes_all if a not in REPLICATE_AXES and len({r[a] for r in rows}) > 1]
    cell_rows = cells(keep + replicate_axes(axes_all), rows)
    cell_rows = [c for c in cell_rows if c["n"]] or cell_rows
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
            mean = np.array([v.mean if v.n else np.nan for v in iv])
            err = np.array([[v.mean - v.lo, v.hi - v.mean] if v.n > 1 else [0.0, 0.0] for v in iv]).T.reshape(2, -1)
            ax.bar(x + offset, mean, width, yerr=err, capsize=2, label=label, color=color,
                   error_kw={"elinewidth": 0.8})

        bars(top, "attacked.trigger_acc", -0.2, 0.4, "after the attack", "C3")
        bars(top, "restore.trigger_acc", 0.2, 0.4, "after restoration", "C2")
        for k, (key, offset) in enumerate((("attacked.control_acc", -0.2), ("restore.control_acc", 0.2))):
            control = np.array([c[key].mean if key in c and c[key].n else np.nan for c in members])
            if np.isfinite(control).any():  # the watermark effect is the bar's height above this mark
                top.hlines(control, x + offset - 0.19, x + offset + 0.19, colors="black", linewidth=2,
                           label="control (the images without the trigger)" if k == 0 else None)
        top.set_ylim(0, 1.05)
        top.set_ylabel("trigger accuracy", fontsize=8)
        top.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        top.set_title(f"{facet.split('.')[-1]} = {group}" if facet else "trigger accuracy", fontsize=9, loc="left")
        bars(right, "gain", 0.0, 0.6, "restored - attacked", "C0")
        right.axhline(0, color="black", lw=0.8)
        right.set_ylabel("restoration gain", fontsize=8)
        right.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        if row == 0:  # one legend for every row, below the panels: never over a bar or a title
            fig.legend(*top.get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncol=3, frameon=False)
    seeds = ", ".join(replicate_axes(axes_all))
    fig.suptitle(f"Mean over seeds ({seeds}): trigger accuracy with {LOGIT_T} intervals and its control (black),\n"
                 f"gain with {ATANH_T}; "
                 f"seeds per cell: {min(ns)}" + (f"-{max(ns)}" if max(ns) != min(ns) else "")
                 + (f"; {excluded} collapsed runs excluded" if excluded else ""), fontsize=10)
    written = []
    for ext in ("png", "svg"):
        p = folder / f"seed_intervals.{ext}"
        _save_figure(fig, p, 110)
        written.append(str(p))
    plt.close(fig)
    return written


def _save_figure(fig: Any, path: Path, dpi: int) -> None:
    """A figure written aside and renamed, never through a link (the report's files were checked up front)."""
    from wmstudio.safe_files import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi)


