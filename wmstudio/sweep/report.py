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
``wmstudio report PART1 PART2 --out DIR`` (``collect_many``, ``write_report(..., sources=...)``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.errors import RunLogError
from wmstudio.metric_names import metric_label
from wmstudio.metrics.collapse import COLLAPSE_MAJORITY, COLLAPSE_MARGIN, collapse_reason
from wmstudio.sweep.intervals import (
    ALPHA,
    ATANH_T,
    COMPARISON_TEST,
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
from wmstudio.sweep.spec import label_of

COLUMNS = [(key, metric_label(key)) for key in (
    "watermarked.test_acc", "watermarked.trigger_acc", "attacked.test_acc", "attacked.trigger_acc", "gain",
    "attacked.drift_rel", "attacked.p_value", "finetune.test_acc", "finetune.trigger_acc", "restore.test_acc",
    "restore.trigger_acc", "finetune.drift_rel", "restore.drift_rel", "finetune.p_value", "restore.p_value")]
STAGES = {"watermarked": "watermarked", "attacked": "attacked", "restore": "restored"}  # the models a run reports on
CONTROL_COLUMNS = [f"{stage}.{col}" for stage in STAGES for col in ("control_acc", "trigger_effect")]
FLAG_COLUMNS = [f"{stage}.{col}" for stage in STAGES for col in ("majority_share", "collapsed")]
COUNT_COLUMNS = ["n_trigger", "n_test", "num_classes", "seed.run", "seed.trigger", "seed.split"]
# per run: k/n accuracies with Wilson intervals (n: n_trigger or n_test), and the gain with Newcombe's
PER_RUN_INTERVALS = {"attacked.trigger_acc": "n_trigger", "restore.trigger_acc": "n_trigger",
                     "attacked.test_acc": "n_test", "restore.test_acc": "n_test"}
NOT_RECORDED = "not recorded"
# class counts of the built-in data sets, for records written before the log's class count was recorded
KNOWN_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "mnist": 10, "fashion-mnist": 10, "svhn": 10}


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and abs(v) < 1e-3) else f"{v:.4f}"
    return str(v)


def _fmt_control(row: dict[str, Any], key: str) -> str:
    """A control or effect value; "not recorded" for a finished run whose log has none (older logs)."""
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NOT_RECORDED if row["status"] == "finished" else ""
    return _fmt(v)


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def _class_count(meta: dict[str, Any]) -> int | None:
    base = meta.get("base") or {}
    model = base.get("model") or {}
    if model.get("num_classes"):
        return int(model["num_classes"])
    return KNOWN_CLASSES.get(str((base.get("data") or {}).get("dataset", "digits")))


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
        row: dict[str, Any] = {"run_id": rec["run_id"], "status": rec.get("status", "pending"),
                               "error": (rec.get("error") or "").splitlines()[0] if rec.get("error") else ""}
        row.update({a: rec.get("values", {}).get(a) for a in axes})
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
        for key in [k for k, _ in COLUMNS] + CONTROL_COLUMNS + FLAG_COLUMNS + COUNT_COLUMNS:
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
    row["excluded"] = row["status"] == "finished" and bool(row["flag"])


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
            w.writerow([r["run_id"], *[r[a] for a in axes], r["status"], r["flag"], *[_fmt(r[k]) for k, _ in COLUMNS],
                        *[_fmt_control(r, k) for k in CONTROL_COLUMNS], *[_fmt(r[k]) for k in FLAG_COLUMNS],
                        *[_fmt(r[k]) for k in COUNT_COLUMNS], *(_fmt(getattr(iv, e)) for iv in ivs for e in ("lo", "hi")),
                        _fmt(r["seconds"]), r["error"]])


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


def _metric_args(key: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """The arguments of ``seed_interval``/``welch_p`` for ``key`` over ``members`` (values, ns, parts)."""
    spec = next(s for k, _, s in CELL_METRICS if k == key)
    values = [m[key] for m in members]
    ns = [m.get("n_trigger") for m in members]
    if isinstance(spec, tuple):
        return {"values": values, "ns": ns, "parts": [(m.get(spec[0]), m.get(spec[1])) for m in members],
                "difference": True}
    return {"values": values, "ns": [m.get(spec) for m in members], "parts": None, "difference": False}


def _included(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished runs that are not flagged: the only runs cells, comparisons and figures count."""
    return [r for r in rows if r["status"] == "finished" and not r.get("excluded")]


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
        if r["status"] == "finished":
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
            cell[k] = seed_interval(**_metric_args(k, members))
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
                    line += [_fmt(iv.mean), _fmt(iv.lo), _fmt(iv.hi), ";".join(f"{v:.4f}" for v in iv.values)]
            d = c["attacked.drift_rel"]
            w.writerow([*line, _fmt(d.mean), _fmt(d.lo), _fmt(d.hi)])


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
                args_a, args_b = _metric_args(metric, a["members"]), _metric_args(metric, b["members"])
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
            w.writerow([c["metric"], c["axis"], c["a"], c["b"], c["given"], c["seeds_a"], c["seeds_b"], _fmt(d.mean),
                        _fmt(d.lo), _fmt(d.hi), _fmt(c["p"]), _fmt(c["p_holm"]), _fmt(c["drift_a"]),
                        _fmt(c["drift_b"]), c["verdict"]])


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
             f"{sum(r['status'] == 'finished' for r in rows)} finished, {sum(r['status'] == 'failed' for r in rows)} "
             f"failed, {sum(bool(r.get('excluded')) for r in rows)} excluded as collapsed.", "",
             "Control: the rate at which a model gives the trigger labels to the control images (the same images "
             "without the trigger, or matched clean images); effect = trigger accuracy - control rate. Logs written "
             f"before controls were recorded read \"{NOT_RECORDED}\".", ""]
    lines += _exclusions(rows, axes) + [""]
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
        return _fmt_control(r, key)
    iv = r.get("gain.newcombe" if key == "gain" else f"{key}.wilson")
    if iv is not None and iv.n and r.get(key) is not None:
        if key == "gain":
            return f"{r[key]:+.3f} [{iv.lo:+.2f}, {iv.hi:+.2f}]"
        return f"{r[key]:.3f} [{iv.lo:.2f}, {iv.hi:.2f}]"
    return _fmt(r[key])


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
                     + f" | {_fmt(c['p'])} | {_fmt(c['p_holm'])} | "
                     f"{_fmt(c['drift_a'])} / {_fmt(c['drift_b'])} | {c['verdict']} |")
    return lines


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
                ci[i][j] = seed_interval(**_metric_args(key, members))
    return rv, cv, m, ci


def draw_figures(folder: Path, axes_all: list[str], rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    finished = [r for r in rows if r["status"] == "finished"]
    done = _included(rows)
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
    for k, value in enumerate(sorted({r[group] for r in done}, key=str)):
        pts = [(r["attacked.drift_rel"], r["restore.trigger_acc"], r["attacked.trigger_acc"]) for r in done
               if r[group] == value and r["attacked.drift_rel"] is not None and r["restore.trigger_acc"] is not None
               and r["attacked.trigger_acc"] is not None]
        if pts:
            d, restored, attacked = np.asarray(pts, dtype=float).T
            ax.scatter(d, restored, label=f"{group.split('.')[-1]}={value}", color=f"C{k % 10}", s=40)
            ax.scatter(d, attacked, color=f"C{k % 10}", s=18, marker="x", alpha=0.6)
    out = [(r["attacked.drift_rel"], r["restore.trigger_acc"]) for r in flagged
           if r["attacked.drift_rel"] is not None and r["restore.trigger_acc"] is not None]
    if out:
        d, restored = np.asarray(out, dtype=float).T
        ax.scatter(d, restored, facecolors="none", edgecolors="grey", s=40, label="collapsed (excluded)")
    ax.set_xlabel("relative weight drift after the attack (L2 / ||watermarked||)")
    ax.set_ylabel("trigger accuracy  (o restored, x attacked)")
    ax.set_ylim(-0.03, 1.03)
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


REPORT_FILES = ("report.csv", "report.md", "cells.csv", "comparisons.csv", *(f"{name}.{ext}" for name in
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
