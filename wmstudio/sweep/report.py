"""``wmstudio report DIR``: every run of a sweep in one table, the cells over seeds, and the comparisons.

Writes report.csv, report.md, and figures (PNG and SVG): heat maps of trigger accuracy after the
attack and after restoration over the two main swept axes (averaged over any others; the attack's
drift beside each attacked cell), and a scatter of the attack's drift against restored trigger
accuracy (does drift predict restorability?).

"Attacked" is whichever attack a run made: fine-tuning, extraction, or an ``[attack] kind`` stage
(``attack.kind`` is an axis like any other). Beside each stage's trigger accuracy, the control rate
(trigger labels given to the control images) and the watermark effect (trigger accuracy - control
rate), "not recorded" for logs written before controls were. Per run, k/n accuracies carry Wilson
intervals and the gain Newcombe's (report.csv, n from the log).

Collapse: a run whose watermarked, attacked or restored model is collapsed (the log's ``collapsed``
column, or ``wmstudio.metrics.collapse.collapse_reason`` from its test accuracy and, where recorded,
the share of its most frequent prediction) is flagged in the tables and left out of every cell,
comparison and figure, so it never counts as a survival, a removal or a recovery; the report says
how many runs were excluded and why.

Seed axes (``run.seed``, ``trigger.seed``, ``data.split_seed``) are not shown as axes but replicate
each cell: cells.csv and the report give, per cell, the seeds and their values, the mean and a 95%
interval that stays in range (logit-t for accuracies, atanh-t for the gain and the effect; see
``wmstudio.sweep.intervals``, the method named in every header and title), and the attack's drift
(mean and range). Comparisons (comparisons.csv and the report): every pair of cells that differ in
one axis, per compared metric, as a difference of means with its MOVER interval, Welch's p-value and
Holm's adjustment over all of them, each side's drift beside it.

A comparison run in parts (one sweep folder per part, with the same axes) is reported as one:
``wmstudio report PART1 PART2 --out DIR`` (``collect_many``, ``report_write.write_report(..., sources=...)``).
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

from wmstudio.catalog import DATASETS
from wmstudio.errors import RunLogError
from wmstudio.metric_names import metric_label
from wmstudio.metrics.collapse import collapse_reason
from wmstudio.status import Status
from wmstudio.sweep.intervals import (
    ALPHA,
    ATANH_T,
    LOGIT_T,
    MOVER,
    NEWCOMBE,
    REPLICATE_AXES,
    WILSON,
    Interval,
    holm,
    mover,
    newcombe,
    seed_interval,
    welch_p,
    wilson_of,
)
from wmstudio.sweep.records import load_sweep_folder, read_json

COLUMNS = [(key, metric_label(key)) for key in (
    "watermarked.test_acc", "watermarked.trigger_acc", "attacked.test_acc", "attacked.trigger_acc", "gain",
    "attacked.drift_rel", "attacked.p_value", "finetune.test_acc", "finetune.trigger_acc", "restore.test_acc",
    "restore.trigger_acc", "finetune.drift_rel", "restore.drift_rel", "finetune.p_value", "restore.p_value")]
STAGES = {"watermarked": "watermarked", "attacked": "attacked", "restore": "restored"}  # the models a run reports on
CONTROL_COLUMNS = [f"{stage}.{col}" for stage in STAGES for col in ("control_acc", "trigger_effect")]
FLAG_COLUMNS = [f"{stage}.{col}" for stage in STAGES for col in ("majority_share", "collapsed")]
COUNT_COLUMNS = ["n_trigger", "n_test", "num_classes", "seed.run", "seed.trigger", "seed.split"]
# the best evaluation along the restoration and where it was (reported beside the end; decides nothing)
PEAK_COLUMNS = [f"restore.peak_{col}{at}" for col in ("trigger_acc", "trigger_effect") for at in ("", "_at")]
# per run: k/n accuracies with Wilson intervals (n: n_trigger or n_test), and the gain with Newcombe's
PER_RUN_INTERVALS = {"attacked.trigger_acc": "n_trigger", "restore.trigger_acc": "n_trigger",
                     "attacked.test_acc": "n_test", "restore.test_acc": "n_test"}
NOT_RECORDED = "not recorded"


def fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and abs(v) < 1e-3) else f"{v:.4f}"
    return str(v)


def fmt_control(row: dict[str, Any], key: str) -> str:
    """A control or effect value; "not recorded" for a finished run whose log has none (older logs), empty
    where the stage itself did not run (no trigger accuracy for it either: a sweep without restoration)."""
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        ran = row.get(f"{key.split('.')[0]}.trigger_acc")
        ran = ran is not None and not (isinstance(ran, float) and math.isnan(ran))
        return NOT_RECORDED if row["status"] == Status.FINISHED and ran else ""
    return fmt_value(v)


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def _class_count(meta: dict[str, Any]) -> int | None:
    base = meta.get("base") or {}
    model = base.get("model") or {}
    if model.get("num_classes"):
        return int(model["num_classes"])
    # the data set's own class count (catalog.DATASETS), for records written before the log's was recorded
    dataset = str((base.get("data") or {}).get("dataset", "digits"))
    native = DATASETS.get(dataset).native if dataset in DATASETS else None
    return native[1] if native else None


def _config_counts(meta: dict[str, Any]) -> dict[str, int]:
    """The trigger set's and test split's sizes the sweep's base config sets, for records written before the log's
    own counts were recorded (the trigger set has exactly ``trigger.size`` images; ``data.test_size`` 0 means the
    whole test split, whose size the config does not say)."""
    base = meta.get("base") or {}
    out = {}
    size = (base.get("trigger") or {}).get("size")
    if isinstance(size, int) and size > 0:
        out["n_trigger"] = size
    test = (base.get("data") or {}).get("test_size")
    if isinstance(test, int) and test > 0:
        out["n_test"] = test
    return out


def collapse_flags(row: dict[str, Any], num_classes: int | None) -> dict[str, str]:
    """Per stage (watermarked, attacked, restore), why its model is flagged as collapsed ("" when it is not).

    The log's ``collapsed`` column decides where it is recorded; otherwise ``collapse_reason`` is recomputed from
    the test accuracy and, where recorded, the share of the most frequent test prediction (without it: test
    accuracy near chance alone)."""
    out = {}
    for stage in STAGES:
        reason = collapse_reason(_num(row.get(f"{stage}.test_acc")), _num(row.get(f"{stage}.majority_share")),
                                 num_classes or 0)
        flagged = row.get(f"{stage}.collapsed")
        if flagged is not None and math.isfinite(float(flagged)):
            reason = (reason or "flagged as collapsed in the log") if float(flagged) >= 0.5 else ""
        out[stage] = reason
    return out


def collect(folder: str | Path) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """(sweep meta, axis names, one row per run with its axis values, status, final metrics, control and effect,
    counts and seeds, per-run intervals and collapse flags: ``flag`` says why a run is excluded, ``excluded``)."""
    folder = Path(folder)
    meta, records = load_sweep_folder(folder)
    axes = list(meta.get("axes", {}))
    classes = _class_count(meta)
    rows = []
    for rec in records:
        row: dict[str, Any] = {"run_id": rec["run_id"], "status": rec.get("status", str(Status.PENDING)),
                               "error": (rec.get("error") or "").splitlines()[0] if rec.get("error") else ""}
        row.update({a: rec.get("values", {}).get(a) for a in axes})
        source = rec.get("source")  # the engine's source fingerprint (wmstudio.source_pin); a record may be crafted
        row["source"] = source if isinstance(source, str) and re.fullmatch(r"[0-9a-f]{1,64}", source) else ""
        finals = dict(rec.get("finals") or {})
        embed = read_json(folder / "embeds" / f"{rec.get('embed_id', '')}.json") if rec.get("embed_id") else None
        if embed and embed.get("finals"):
            for col in ("test_acc", "trigger_acc", "control_acc", "trigger_effect", "majority_share", "collapsed"):
                if finals.get(f"watermarked.{col}") is None:
                    finals[f"watermarked.{col}"] = embed["finals"].get(f"embed.{col}")
            for key in COUNT_COLUMNS:
                if finals.get(key) is None:
                    finals[key] = embed["finals"].get(key)
        for col in ("test_acc", "trigger_acc", "drift_rel", "drift_l2", "p_value"):  # records older than "attacked"
            finals.setdefault(f"attacked.{col}", finals.get(f"finetune.{col}", finals.get(f"extract.{col}")))
        for key in [k for k, _ in COLUMNS] + CONTROL_COLUMNS + FLAG_COLUMNS + COUNT_COLUMNS + PEAK_COLUMNS:
            row[key] = finals.get(key)
        for stage in STAGES:  # an effect the log did not write, from its trigger accuracy and control rate
            t, c = row.get(f"{stage}.trigger_acc"), row.get(f"{stage}.control_acc")
            if row.get(f"{stage}.trigger_effect") is None and t is not None and c is not None:
                row[f"{stage}.trigger_effect"] = t - c
        if row["seed.run"] is None and "run.seed" in row:
            row["seed.run"] = row["run.seed"]
        for key, value in _config_counts(meta).items():
            if row.get(key) is None:
                row[key] = value
        a, r = row.get("attacked.trigger_acc"), row.get("restore.trigger_acc")
        row["gain"] = r - a if a is not None and r is not None else None
        for key, n in PER_RUN_INTERVALS.items():
            row[f"{key}.wilson"] = wilson_of(row.get(key), row.get(n))
        row["gain.newcombe"] = newcombe(r, a, row.get("n_trigger"), row.get("n_trigger"))
        _apply_flags(row, classes)
        row["seconds"] = rec.get("seconds")
        rows.append(row)
    return meta, axes, rows


def _apply_flags(row: dict[str, Any], classes: int | None) -> None:
    """The row's collapse flags (``flags``, ``flag``, ``excluded``), with ``classes`` where the record has no class count."""
    flags = collapse_flags(row, row.get("num_classes") or classes)
    row["flags"] = flags
    row["flag"] = "; ".join(f"{STAGES[s]} model collapsed: {why}" for s, why in flags.items() if why)
    row["excluded"] = row["status"] == Status.FINISHED and bool(row["flag"])


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
            row["_data"] = json.dumps((meta.get("base") or {}).get("data") or {}, sort_keys=True)
            by_id[row["run_id"]] = row
    # Records older than the logged class count: the count a part with the same data settings recorded
    known = {r["_data"]: int(r["num_classes"]) for r in by_id.values() if r.get("num_classes")}
    for row in by_id.values():
        data = row.pop("_data")
        if not row.get("num_classes") and data in known:
            _apply_flags(row, known[data])
    names = [str(m.get("name", "")) for m in metas]
    meta = {"name": " + ".join(n for n in names if n), "parts": [str(f) for f in folders],
            "base": metas[0].get("base", {})}
    decisions = [m["decision"] for m in metas if m.get("decision")]
    if decisions and all(d == decisions[0] for d in decisions) and len(decisions) == len(metas):
        meta["decision"] = decisions[0]  # parts of one comparison under one declared rule
    return meta, list(axes0 or []), list(by_id.values())


def _slug(method: str) -> str:
    return method.replace(" 95%", "95").replace("-", "_").lower()


def write_csv(path: Path, axes: list[str], rows: list[dict[str, Any]]) -> None:
    """One line per run; interval columns are named for their method (``.wilson95_lo``, ``gain.newcombe95_lo``)."""
    intervals = [*PER_RUN_INTERVALS, "gain"]
    names = {k: f"{k}.{_slug(WILSON)}" for k in PER_RUN_INTERVALS} | {"gain": f"gain.{_slug(NEWCOMBE)}"}
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", *axes, "status", "flag", *[k for k, _ in COLUMNS], *CONTROL_COLUMNS, *FLAG_COLUMNS,
                    *COUNT_COLUMNS, *(f"{names[k]}_{end}" for k in intervals for end in ("lo", "hi")),
                    "seconds", "error"])
        for r in rows:
            ivs = [r[f"{k}.wilson"] for k in PER_RUN_INTERVALS] + [r["gain.newcombe"]]
            w.writerow([r["run_id"], *[r[a] for a in axes], r["status"], r["flag"], *[fmt_value(r[k]) for k, _ in COLUMNS],
                        *[fmt_control(r, k) for k in CONTROL_COLUMNS], *[fmt_value(r[k]) for k in FLAG_COLUMNS],
                        *[fmt_value(r[k]) for k in COUNT_COLUMNS], *(fmt_value(getattr(iv, e)) for iv in ivs for e in ("lo", "hi")),
                        fmt_value(r["seconds"]), r["error"]])


# Per cell over seeds: (key, heading, n column for a proportion / the two proportions of a difference)
CELL_METRICS: list[tuple[str, str, str | tuple[str, str]]] = [
    ("attacked.trigger_acc", "trigger acc (attacked)", "n_trigger"),
    ("restore.trigger_acc", "trigger acc (restored)", "n_trigger"),
    ("gain", "restoration gain", ("restore.trigger_acc", "attacked.trigger_acc")),
    ("attacked.control_acc", "control (attacked)", "n_trigger"),
    ("attacked.trigger_effect", "effect (attacked)", ("attacked.trigger_acc", "attacked.control_acc")),
    ("restore.control_acc", "control (restored)", "n_trigger"),
    ("restore.trigger_effect", "effect (restored)", ("restore.trigger_acc", "restore.control_acc")),
    ("attacked.test_acc", "test acc (attacked)", "n_test"),
    ("restore.test_acc", "test acc (restored)", "n_test")]
CONTROL_METRICS = {k for k, _, _ in CELL_METRICS if "control" in k or "effect" in k}
COMPARED = ["attacked.trigger_acc", "restore.trigger_acc", "gain", "attacked.trigger_effect", "restore.trigger_effect"]


def replicate_axes(axes: list[str]) -> list[str]:
    return [a for a in axes if a in REPLICATE_AXES]


def _is_difference(key: str) -> bool:
    return isinstance(next(spec for k, _, spec in CELL_METRICS if k == key), tuple)


def metric_args(key: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """The arguments of ``seed_interval``/``welch_p`` for ``key`` over ``members`` (values, ns, parts)."""
    spec = next(s for k, _, s in CELL_METRICS if k == key)
    values = [m[key] for m in members]
    ns = [m.get("n_trigger") for m in members]
    if isinstance(spec, tuple):
        return {"values": values, "ns": ns, "parts": [(m.get(spec[0]), m.get(spec[1])) for m in members],
                "difference": True}
    return {"values": values, "ns": [m.get(spec) for m in members], "parts": None, "difference": False}


def included_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished runs that are not flagged: the only runs cells, comparisons and figures count."""
    return [r for r in rows if r["status"] == Status.FINISHED and not r.get("excluded")]


def _seed_label(r: dict[str, Any], seeds: list[str]) -> str:
    return "/".join(str(r.get(a)) for a in seeds) if seeds else str(r.get("seed.run"))


def cells(axes: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per combination of the non-seed axes: its values, seeds count (``n``), the seeds, how many of its
    finished runs were excluded as collapsed, an Interval per CELL_METRICS key (finished, unflagged runs only) and the
    attack's relative drift (mean and range over the seeds, ``attacked.drift_rel``)."""
    keep = [a for a in axes if a not in REPLICATE_AXES]
    seeds = replicate_axes(axes)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == Status.FINISHED:
            groups.setdefault(tuple(repr(r[a]) for a in keep), []).append(r)
    out = []
    for finished in groups.values():
        members = [r for r in finished if not r.get("excluded")]
        cell: dict[str, Any] = {a: finished[0][a] for a in keep}
        cell["n"] = len(members)
        cell["seeds"] = tuple(_seed_label(m, seeds) for m in members)
        cell["excluded"] = len(finished) - len(members)
        cell["members"] = members
        for k, _, _ in CELL_METRICS:
            cell[k] = seed_interval(**metric_args(k, members))
        drifts = [float(m["attacked.drift_rel"]) for m in members if m.get("attacked.drift_rel") is not None]
        cell["attacked.drift_rel"] = (Interval(sum(drifts) / len(drifts), min(drifts), max(drifts), len(drifts),
                                               "range of seeds", tuple(drifts))
                                      if drifts else Interval(math.nan, math.nan, math.nan, 0, "range of seeds"))
        out.append(cell)
    return out


def write_cells_csv(path: Path, axes: list[str], cell_rows: list[dict[str, Any]]) -> None:
    """One line per cell; interval columns are named for their method (``.logit_t95_lo``, ``.atanh_t95_lo``)."""
    keep = [a for a in axes if a not in REPLICATE_AXES]
    slug = {k: _slug(ATANH_T if isinstance(spec, tuple) else LOGIT_T) for k, _, spec in CELL_METRICS}
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*keep, "seeds", "seed_values", "excluded_runs",
                    *(f"{k}.{part}" for k, _, _ in CELL_METRICS
                      for part in ("mean", f"{slug[k]}_lo", f"{slug[k]}_hi", "values")),
                    "attacked.drift_rel.mean", "attacked.drift_rel.min", "attacked.drift_rel.max"])
        for c in cell_rows:
            line = [*(c[a] for a in keep), c["n"], ";".join(c["seeds"]), c["excluded"]]
            for k, _, _ in CELL_METRICS:
                iv = c[k]
                if iv.n == 0 and k in CONTROL_METRICS and c["n"]:
                    line += [NOT_RECORDED, "", "", ""]
                else:
                    line += [fmt_value(iv.mean), fmt_value(iv.lo), fmt_value(iv.hi), ";".join(f"{v:.4f}" for v in iv.values)]
            d = c["attacked.drift_rel"]
            w.writerow([*line, fmt_value(d.mean), fmt_value(d.lo), fmt_value(d.hi)])


def comparisons(axes: list[str], cell_rows: list[dict[str, Any]], alpha: float = ALPHA) -> list[dict[str, Any]]:
    """Every comparison the report makes: for each metric of COMPARED, every pair of cells that differ in exactly one
    shown axis (the others held), as the difference of the two cells' means with its MOVER interval, Welch's p-value
    and Holm's adjusted p-value over all of them, each side's attack drift beside it, and the verdict."""
    keep = [a for a in axes if a not in REPLICATE_AXES]
    out: list[dict[str, Any]] = []
    for metric in COMPARED:
        for i, a in enumerate(cell_rows):
            for b in cell_rows[i + 1:]:
                differ = [x for x in keep if a[x] != b[x]]
                if len(differ) != 1 or a[metric].n == 0 or b[metric].n == 0:
                    continue
                axis = differ[0]
                args_a, args_b = metric_args(metric, a["members"]), metric_args(metric, b["members"])
                p = welch_p(args_a["values"], args_b["values"], args_a["ns"], args_b["ns"], args_a["parts"],
                            args_b["parts"], difference=args_a["difference"])
                out.append({"metric": metric, "axis": axis, "a": a[axis], "b": b[axis],
                            "given": ", ".join(f"{x.split('.')[-1]}={a[x]}" for x in keep if x != axis),
                            "diff": mover(a[metric], b[metric]), "p": p, "seeds_a": a["n"], "seeds_b": b["n"],
                            "drift_a": a["attacked.drift_rel"].mean, "drift_b": b["attacked.drift_rel"].mean})
    for c, adj in zip(out, holm([c["p"] for c in out]), strict=True):
        c["p_holm"] = adj
        d = c["diff"]
        if math.isnan(adj):
            c["verdict"] = "not tested: needs 2 seeds a side"
        elif adj < alpha:
            c["verdict"] = f"differ: {c['a'] if d.mean > 0 else c['b']} higher"
        else:
            c["verdict"] = f"cannot be told apart: the interval is {d.width:.2f} wide" if math.isfinite(d.width) \
                else "cannot be told apart"
    return out


def write_comparisons_csv(path: Path, comps: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "axis", "a", "b", "given", "seeds_a", "seeds_b", "difference_a_minus_b",
                    f"{_slug(MOVER)}_lo", f"{_slug(MOVER)}_hi", "p_welch", "p_holm", "drift_rel_a", "drift_rel_b",
                    "verdict"])
        for c in comps:
            d = c["diff"]
            w.writerow([c["metric"], c["axis"], c["a"], c["b"], c["given"], c["seeds_a"], c["seeds_b"], fmt_value(d.mean),
                        fmt_value(d.lo), fmt_value(d.hi), fmt_value(c["p"]), fmt_value(c["p_holm"]), fmt_value(c["drift_a"]),
                        fmt_value(c["drift_b"]), c["verdict"]])


REPORT_FILES = ("report.csv", "report.md", "cells.csv", "comparisons.csv", "decision.md", "decision.json", *(f"{name}.{ext}" for name in
                ("persistence_matrix", "drift_vs_restored", "seed_intervals") for ext in ("png", "svg")))
