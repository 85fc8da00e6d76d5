"""``wmstudio report DIR``: every run of a sweep in one table, and the persistence matrix.

Writes report.csv, report.md, and figures (PNG and SVG): heat maps of trigger accuracy after
fine-tuning and after restoration over the two main swept axes (averaged over any others), and a
scatter of fine-tuning drift against restored trigger accuracy (does drift predict restorability?).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.metric_names import metric_label
from wmstudio.sweep.records import load_sweep_folder, read_json

COLUMNS = [(key, metric_label(key)) for key in (
    "watermarked.test_acc", "watermarked.trigger_acc", "finetune.test_acc", "finetune.trigger_acc", "restore.test_acc",
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
        for key, _ in COLUMNS:
            row[key] = finals.get(key)
        row["seconds"] = rec.get("seconds")
        rows.append(row)
    return meta, axes, rows


def write_csv(path: Path, axes: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", *axes, "status", *[k for k, _ in COLUMNS], "seconds", "error"])
        for r in rows:
            w.writerow([r["run_id"], *[r[a] for a in axes], r["status"], *[_fmt(r[k]) for k, _ in COLUMNS],
                        _fmt(r["seconds"]), r["error"]])


def write_markdown(path: Path, meta: dict[str, Any], axes: list[str], rows: list[dict[str, Any]],
                   figures: list[str]) -> None:
    short = [("watermarked.trigger_acc", "trig (wm)"), ("finetune.trigger_acc", "trig (ft)"),
             ("restore.trigger_acc", "trig (restored)"), ("watermarked.test_acc", "test (wm)"),
             ("finetune.test_acc", "test (ft)"), ("restore.test_acc", "test (restored)"),
             ("finetune.drift_rel", "drift (ft)"), ("restore.p_value", "p (restored)")]
    lines = [f"# Sweep report: {meta.get('name', '')}", "",
             f"{len(rows)} runs over {', '.join(f'`{a}`' for a in axes)}; "
             f"{sum(r['status'] == 'finished' for r in rows)} finished, {sum(r['status'] == 'failed' for r in rows)} failed.",
             "", "| " + " | ".join([*(a.split('.')[-1] for a in axes), "status", *(h for _, h in short)]) + " |",
             "|" + "---|" * (len(axes) + 1 + len(short))]
    for r in rows:
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error'][:80]}"
        lines.append("| " + " | ".join([*(str(r[a]) for a in axes), status, *(_fmt(r[k]) for k, _ in short)]) + " |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    path.write_text("\n".join(lines) + "\n")


def _matrix(rows: list[dict[str, Any]], row_axis: str, col_axis: str, key: str) -> tuple[list, list, np.ndarray]:
    rv = sorted({r[row_axis] for r in rows}, key=lambda v: (str(type(v)), v))
    cv = sorted({r[col_axis] for r in rows}, key=lambda v: (str(type(v)), v)) if col_axis else [""]
    m = np.full((len(rv), len(cv)), np.nan)
    for i, a in enumerate(rv):
        for j, b in enumerate(cv):
            vals = [r[key] for r in rows if r[row_axis] == a and (not col_axis or r[col_axis] == b)
                    and r[key] is not None]
            if vals:
                m[i, j] = float(np.mean(vals))
    return rv, cv, m


def draw_figures(folder: Path, axes_all: list[str], rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "finished"]
    if not done:
        return []
    swept = [a for a in axes_all if len({r[a] for r in rows}) > 1] or axes_all[:1]
    row_axis = swept[0]
    col_axis = swept[1] if len(swept) > 1 else ""
    others = swept[2:]
    written: list[str] = []
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, (key, title) in zip(axs, (("finetune.trigger_acc", "trigger accuracy after fine-tuning"),
                                      ("restore.trigger_acc", "trigger accuracy after restoration")), strict=True):
        rv, cv, m = _matrix(done, row_axis, col_axis, key)
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(rv)), [str(v) for v in rv])
        ax.set_xticks(range(len(cv)), [str(v) for v in cv])
        ax.set_ylabel(row_axis)
        ax.set_xlabel(col_axis or "")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center",
                            color="black" if m[i, j] > 0.6 else "white", fontsize=9)
        ax.set_title(title + (f"\n(mean over {', '.join(others)})" if others else ""), fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85)
    for ext in ("png", "svg"):
        p = folder / f"persistence_matrix.{ext}"
        fig.savefig(p, dpi=130)
        written.append(str(p))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    group = row_axis if "scheme" in row_axis or not col_axis else col_axis
    for k, value in enumerate(sorted({r[group] for r in done}, key=str)):
        pts = [(r["finetune.drift_rel"], r["restore.trigger_acc"], r["finetune.trigger_acc"]) for r in done
               if r[group] == value and r["finetune.drift_rel"] is not None and r["restore.trigger_acc"] is not None]
        if pts:
            d, restored, attacked = np.asarray(pts, dtype=float).T
            ax.scatter(d, restored, label=f"{group.split('.')[-1]}={value}", color=f"C{k}", s=40)
            ax.scatter(d, attacked, color=f"C{k}", s=18, marker="x", alpha=0.6)
    ax.set_xlabel("relative weight drift after fine-tuning (L2 / ||watermarked||)")
    ax.set_ylabel("trigger accuracy  (o restored, x fine-tuned)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Does drift predict restorability?", fontsize=10)
    ax.legend(fontsize=8)
    for ext in ("png", "svg"):
        p = folder / f"drift_vs_restored.{ext}"
        fig.savefig(p, dpi=130)
        written.append(str(p))
    plt.close(fig)
    return written


def write_report(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    meta, axes, rows = collect(folder)
    figures = draw_figures(folder, axes, rows)
    write_csv(folder / "report.csv", axes, rows)
    write_markdown(folder / "report.md", meta, axes, rows, [f for f in figures if f.endswith(".png")])
    return {"rows": rows, "axes": axes, "figures": figures, "csv": str(folder / "report.csv"),
            "markdown": str(folder / "report.md")}
