"""report.md: the sweep's runs, its cells over seeds and its comparisons, each figure with its method named
(the data come from ``wmstudio.sweep.report``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from wmstudio.metrics.collapse import COLLAPSE_MAJORITY, COLLAPSE_MARGIN
from wmstudio.status import Status
from wmstudio.sweep.intervals import (
    ALPHA,
    ATANH_T,
    COMPARISON_TEST,
    LOGIT_T,
    MOVER,
    NEWCOMBE,
    REPLICATE_AXES,
    WILSON,
)
from wmstudio.sweep.report import (
    CELL_METRICS,
    COMPARED,
    CONTROL_COLUMNS,
    CONTROL_METRICS,
    NOT_RECORDED,
    STAGES,
    cells,
    comparisons,
    fmt_control,
    fmt_value,
    replicate_axes,
)
from wmstudio.sweep.spec import label_of


def _seed_scope_text(meta: dict[str, Any], axes: list[str]) -> str:
    seeds = replicate_axes(axes)
    if "run.seed_scope" in axes:
        return "`run.seed_scope` is an axis: per cell, its value says whether the run seed also varied the trigger set " \
               "and the split."
    scope = ((meta.get("base") or {}).get("run") or {}).get("seed_scope", "model")
    what = {"run.seed": "initialisation and data order" + (", the trigger set and the split (`run.seed_scope = "
                                                          "\"all\"`)" if scope == "all" else
                                                          " only; the trigger set and the split stay fixed "
                                                          "(`run.seed_scope = \"model\"`)"),
            "trigger.seed": "the trigger set", "data.split_seed": "the owner/attacker/test split"}
    return "Seeds: " + "; ".join(f"`{a}` varies {what[a]}" for a in seeds) + ". The seed values of each cell are listed."


def _exclusions(rows: list[dict[str, Any]], axes: list[str]) -> list[str]:
    flagged = [r for r in rows if r.get("excluded")]
    if not flagged:
        return ["No run was flagged as collapsed (test accuracy within "
                f"{COLLAPSE_MARGIN:g} of chance, or one class taking more than {COLLAPSE_MAJORITY:.0%} of the test "
                "predictions)."]
    by_stage = {stage: sum(bool(r["flags"][stage]) for r in flagged) for stage in STAGES}
    lines = [f"**{len(flagged)} finished run{'s' if len(flagged) != 1 else ''} excluded** from every cell, comparison "
             "and figure: a collapsed model (test accuracy within "
             f"{COLLAPSE_MARGIN:g} of chance, or one class taking more than {COLLAPSE_MAJORITY:.0%} of the test "
             "predictions) cannot keep, lose or regain a watermark, so it never counts as a survival, a removal or a "
             "recovery (" + ", ".join(f"{n} with the {STAGES[s]} model collapsed" for s, n in by_stage.items() if n)
             + "):", ""]
    lines += [f"- `{r['run_id']}` ({label_of({a: r[a] for a in axes})}): {r['flag']}" for r in flagged]
    return lines


def _source_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Which engine source the runs ran (records written before it was recorded say nothing)."""
    sources = sorted({r["source"] for r in rows if r.get("source")})
    if len(sources) > 1:
        return [f"**The runs ran {len(sources)} versions of the engine's source** ({', '.join(sources)}; "
                "`wmstudio.source_pin`): numbers from different versions may not be comparable.", ""]
    if sources:
        told = sum(bool(r.get("source")) for r in rows)
        return [f"The {told} runs that recorded it ran one engine source, {sources[0]} (`wmstudio.source_pin`).", ""]
    return []


def _cell_text(c: dict[str, Any], key: str) -> str:
    iv = c[key]
    if iv.n == 0:
        return NOT_RECORDED if key in CONTROL_METRICS and c["n"] else ""
    return iv.text() + (f" ({iv.values_text()})" if iv.n > 1 else "")


def write_markdown(path: Path, meta: dict[str, Any], axes: list[str], rows: list[dict[str, Any]],
                   figures: list[str], cell_rows: list[dict[str, Any]] | None = None,
                   comps: list[dict[str, Any]] | None = None) -> None:
    """report.md; ``cell_rows`` and ``comps``: the cells and comparisons already computed (else computed here)."""
    short = [("watermarked.trigger_acc", "trig (wm)"), ("attacked.trigger_acc", "trig (attacked)"),
             ("restore.trigger_acc", "trig (restored)"), ("gain", "gain"),
             ("attacked.control_acc", "control (attacked)"), ("attacked.trigger_effect", "effect (attacked)"),
             ("restore.control_acc", "control (restored)"), ("restore.trigger_effect", "effect (restored)"),
             ("watermarked.test_acc", "test (wm)"), ("attacked.test_acc", "test (attacked)"),
             ("restore.test_acc", "test (restored)"), ("attacked.drift_rel", "drift (attack)"),
             ("restore.p_value", "p (restored)")]
    lines = [f"# Sweep report: {meta.get('name', '')}", ""]
    if meta.get("parts"):
        parts = meta["parts"]
        lines += [(f"Reported together from {len(parts)} sweep folders: " if len(parts) > 1 else "Reported from ")
                  + ", ".join(f"`{p}`" for p in parts) + ".", ""]
    lines += [
             f"{len(rows)} runs over {', '.join(f'`{a}`' for a in axes)}; "
             f"{sum(r['status'] == Status.FINISHED for r in rows)} finished, {sum(r['status'] == Status.FAILED for r in rows)} "
             f"failed, {sum(bool(r.get('excluded')) for r in rows)} excluded as collapsed.", "",
             "Control: the rate at which a model gives the trigger labels to the control images (the same images "
             "without the trigger, or matched clean images); effect = trigger accuracy - control rate. Logs written "
             f"before controls were recorded read \"{NOT_RECORDED}\".", ""]
    lines += _exclusions(rows, axes) + [""] + _source_lines(rows)
    seeds = replicate_axes(axes)
    if seeds:
        keep = [a for a in axes if a not in REPLICATE_AXES]
        cell_rows = cells(axes, rows) if cell_rows is None else cell_rows
        lines += ["## Per cell over seeds", "",
                  f"Per cell: the mean over its seeds, its 95% interval and the seed values in parentheses. "
                  f"Accuracies and control rates: {LOGIT_T} (t-interval on the logit scale, inside [0, 1]); "
                  f"restoration gain (restored - attacked, per run) and effect (trigger accuracy - control): "
                  f"{ATANH_T} (t-interval on the atanh scale, inside [-1, 1]); see `wmstudio.sweep.intervals`. "
                  "An interval needs 2 seeds. Drift (attack): the relative weight drift the attack caused, mean and "
                  "range over the seeds, to read beside how much of the watermark survived.", "",
                  _seed_scope_text(meta, axes), "",
                  "| " + " | ".join([*(a.split('.')[-1] for a in keep), "seeds", "excluded",
                                     *(f"{h} [{ATANH_T if isinstance(spec, tuple) else LOGIT_T}]"
                                       for _, h, spec in CELL_METRICS), "drift (attack) [range]"]) + " |",
                  "|" + "---|" * (len(keep) + 3 + len(CELL_METRICS))]
        for c in cell_rows:
            d = c["attacked.drift_rel"]
            drift = f"{d.mean:.3f} [{d.lo:.3f}, {d.hi:.3f}]" if d.n else ""
            lines.append("| " + " | ".join([*(str(c[a]) for a in keep), f"{c['n']} ({', '.join(c['seeds'])})",
                                            str(c["excluded"]), *(_cell_text(c, k) for k, _, _ in CELL_METRICS),
                                            drift]) + " |")
        lines += [""] + _comparison_lines(comparisons(axes, cell_rows) if comps is None else comps) + ["", "## Every run", ""]
    lines += [f"Per run: trigger and test accuracies after the attack and after restoration are k of n (n: the trigger "
              f"set's and the test split's size, from the log, or from the sweep's config for older records) with their "
              f"{WILSON} intervals in brackets (also in report.csv); the gain with {NEWCOMBE} (conservative for these "
              "paired outcomes). Seeds: run/trigger/split as the log records them.", "",
              "| " + " | ".join([*(a.split('.')[-1] for a in axes), "status", "flag", "seeds",
                                 *(h for _, h in short)]) + " |",
              "|" + "---|" * (len(axes) + 3 + len(short))]
    for r in rows:
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error'][:80]}"
        seed_values = [r.get(k) for k in ("seed.run", "seed.trigger", "seed.split")]
        seeds_text = ("/".join("" if v is None else str(v) for v in seed_values)
                      if any(v is not None for v in seed_values) else NOT_RECORDED)
        lines.append("| " + " | ".join([*(str(r[a]) for a in axes), status, "excluded: " + r["flag"] if r["flag"] else "",
                                        seeds_text, *(_run_cell(r, k) for k, _ in short)]) + " |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    path.write_text("\n".join(lines) + "\n")


def _run_cell(r: dict[str, Any], key: str) -> str:
    """One run's value in the Markdown table; a proportion with its Wilson interval where its n is known."""
    if key in CONTROL_COLUMNS:
        return fmt_control(r, key)
    iv = r.get("gain.newcombe" if key == "gain" else f"{key}.wilson")
    if iv is not None and iv.n and r.get(key) is not None:
        if key == "gain":
            return f"{r[key]:+.3f} [{iv.lo:+.2f}, {iv.hi:+.2f}]"
        return f"{r[key]:.3f} [{iv.lo:.2f}, {iv.hi:.2f}]"
    return fmt_value(r[key])


def _comparison_lines(comps: list[dict[str, Any]]) -> list[str]:
    if not comps:
        return []
    tested = [c for c in comps if not math.isnan(c["p_holm"])]
    differ = [c for c in tested if c["p_holm"] < ALPHA]
    apart = [c for c in tested if c["p_holm"] >= ALPHA]
    lines = ["## Comparisons between cells", "",
             f"{len(comps)} comparisons: for each of {', '.join(f'`{m}`' for m in COMPARED)}, every pair of cells that "
             "differ in one axis, the others held. Difference = mean A - mean B with its "
             f"{MOVER} interval (Zou and Donner's MOVER from the two cells' intervals); p: {COMPARISON_TEST} over "
             f"the {len(tested)} tested comparisons (Holm's step-down, family-wise error {ALPHA:g}). "
             f"{len(differ)} differ after the correction."]
    if apart:
        widths = sorted(c["diff"].width for c in apart if math.isfinite(c["diff"].width))
        if widths:
            lines[-1] += (f" {len(apart)} cannot be told apart at these seed counts: their intervals are "
                          f"{widths[0]:.2f}-{widths[-1]:.2f} wide (median {widths[len(widths) // 2]:.2f}), "
                          "so a difference much smaller than that cannot be seen; this says how much the seeds "
                          "resolve, not that the methods are alike.")
    if len(tested) < len(comps):
        lines[-1] += f" {len(comps) - len(tested)} not tested (fewer than 2 seeds a side)."
    shown = comps if len(comps) <= 60 else differ
    if len(comps) > 60:
        lines[-1] += " All of them are in comparisons.csv; the table lists those that differ."
    if not shown:
        return lines
    lines += ["", "| metric | axis | A | B | held | A - B [MOVER 95%] | p (Welch) | p (Holm) | drift A / B | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in shown:
        d = c["diff"]
        lines.append(f"| {c['metric']} | {c['axis'].split('.')[-1]} | {c['a']} | {c['b']} | {c['given']} | "
                     f"{d.mean:+.3f} " + (f"[{d.lo:+.3f}, {d.hi:+.3f}]" if math.isfinite(d.width) else "(no interval)")
                     + f" | {fmt_value(c['p'])} | {fmt_value(c['p_holm'])} | "
                     f"{fmt_value(c['drift_a'])} / {fmt_value(c['drift_b'])} | {c['verdict']} |")
    return lines


