"""Decision rules declared in a sweep file before its runs, applied by the report to what the runs gave.

A sweep file may carry a ``[decision]`` table; it is part of the expanded sweep (``sweep.json``), so
the rule a report applies is the one the runs were started under, not one chosen after seeing them.
Two rules, after the CIFAR-10 comparison's page (docs/attacks_cifar10.md):

``rule = "persistence"`` (do embedding methods differ in how much watermark survives an attack?).
E is the watermark effect after the attack (trigger accuracy - control rate). For every method
other than ``baseline`` and every value of the attack axis, D = E(method) - E(baseline) is taken per
seed (same seed, same attack). The method is *more persistent* there where D > 0 in every seed and
the mean of D > ``min_difference``; *less persistent* where D < 0 in every seed and the mean <
-``min_difference``; else *no difference shown*. A Welch test of the two methods' effects (atanh
scale, as the report's comparisons) gets Holm's correction over every (method, attack) pair;
"methods differ" is *reproduced* where some pair shows a difference and its Holm p < ``alpha``.

``rule = "restoration"`` (does training on the owner's data bring the watermark back?). Per run of
the ``baseline`` method, G = E after restoration - E after the attack, with the MOVER interval of
the two effects' Newcombe intervals. Per attack: *reproduced* where G >= ``min_gain`` and the
interval excludes 0 in every seed, *partly* where that holds in some, *not reproduced* otherwise.
A run whose watermark the attack left working (trigger accuracy >= ``min_trigger_acc`` after it,
the bar a watermarked model must meet) has nothing to restore: it is listed but not counted, and an
attack that left it in every seed reads *nothing to restore*; an attack with fewer than 2 seeds that
removed it is *not decided*; a reading while seeds are still to run says so ("so far"). "Up to 100%" holds where restoration
brought a lost watermark back (the gain meets the rule) to trigger accuracy >= ``full``; a model the
attack never took the watermark from does not count. (Both were made explicit after the first
restoration runs, in which a model the weakest attack left at 0.97 "reached 0.99 after restoration";
docs/attacks_cifar10.md.) The peak along the restoration is reported beside the end and decides
nothing (choosing the best point is optimistic).

Both rules first drop runs the report flags as collapsed and method-seeds whose watermarked model
misses ``min_test_acc`` or ``min_trigger_acc`` ("embedding failed"), and count them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from wmstudio.errors import ConfigError
from wmstudio.status import Status
from wmstudio.sweep.intervals import Interval, holm, mover, newcombe, welch_p

RULES = ("persistence", "restoration")


@dataclass(frozen=True)
class DecisionRule:
    rule: str
    baseline: str = "plain"
    method_axis: str = "embed.method"
    attack_axis: str = "attack"
    seed_axis: str = "seed"
    min_difference: float = 0.15
    alpha: float = 0.05
    min_test_acc: float = 0.85
    min_trigger_acc: float = 0.90
    min_gain: float = 0.20
    full: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_rule(raw: Any, axes: list[str] | None = None) -> DecisionRule:
    """The ``[decision]`` table as a rule; a bad key or value is a ConfigError naming ``decision.KEY``."""
    if not isinstance(raw, dict):
        raise ConfigError("decision", "a table expected, e.g. [decision] rule = \"persistence\"")
    fields = DecisionRule.__dataclass_fields__
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"decision.{unknown[0]}", f"unknown key; expected one of {', '.join(fields)}")
    rule = raw.get("rule")
    if rule not in RULES:
        raise ConfigError("decision.rule", f"{rule!r}: one of {', '.join(RULES)} expected")
    values: dict[str, Any] = {"rule": rule}
    for key, f in fields.items():
        if key == "rule" or key not in raw:
            continue
        v = raw[key]
        if f.type == "str":
            if not isinstance(v, str) or not v:
                raise ConfigError(f"decision.{key}", f"{v!r}: a name expected")
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"decision.{key}", f"{v!r}: a number expected")
            lo, hi = (1e-9, 0.5) if key == "alpha" else (0.0, 1.0)
            if not lo <= v <= hi:
                raise ConfigError(f"decision.{key}", f"{v!r}: between {lo:g} and {hi:g} expected")
            v = float(v)
        values[key] = v
    out = DecisionRule(**values)
    if axes is not None:
        need = {"seed_axis": out.seed_axis, "attack_axis": out.attack_axis}
        if out.rule == "persistence":
            need["method_axis"] = out.method_axis
        for key, axis in need.items():
            if axis not in axes:
                raise ConfigError(f"decision.{key}", f"the sweep has no axis {axis!r} (axes: {', '.join(axes)})")
    return out


def _f(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _effect(row: dict[str, Any], stage: str) -> float | None:
    return _f(row.get(f"{stage}.trigger_effect"))


def _effect_interval(row: dict[str, Any], stage: str) -> Interval:
    n = row.get("n_trigger")
    return newcombe(_f(row.get(f"{stage}.trigger_acc")), _f(row.get(f"{stage}.control_acc")), n, n)


def _screen(rule: DecisionRule, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs the rule reads, and one line per run or method-seed left out (and why)."""
    kept, notes = [], []
    failed: set[tuple[Any, Any]] = set()
    for r in rows:
        key = (r.get(rule.method_axis), r.get(rule.seed_axis))
        if r.get("status") != Status.FINISHED:
            notes.append(f"{r.get('run_id')}: {r.get('status')} (not finished)")
            continue
        if r.get("excluded"):
            notes.append(f"{r.get('run_id')} ({key[0]}, {r.get(rule.attack_axis)}, {key[1]}): excluded, {r.get('flag')}")
            continue
        test, trig = _f(r.get("watermarked.test_acc")), _f(r.get("watermarked.trigger_acc"))
        if test is None or trig is None or test < rule.min_test_acc or trig < rule.min_trigger_acc:
            if key not in failed:
                failed.add(key)
                notes.append(f"{key[0]}, {key[1]}: embedding failed (watermarked test acc {test}, trigger acc {trig}; "
                             f"needed >= {rule.min_test_acc:g} and >= {rule.min_trigger_acc:g})")
            continue
        kept.append(r)
    return kept, notes


def _ordered(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def persistence(rule: DecisionRule, rows: list[dict[str, Any]]) -> dict[str, Any]:
    kept, notes = _screen(rule, rows)
    by = {(r.get(rule.method_axis), r.get(rule.attack_axis), r.get(rule.seed_axis)): r for r in kept}
    methods = [m for m in _ordered([r.get(rule.method_axis) for r in rows]) if m != rule.baseline]
    attacks = _ordered([r.get(rule.attack_axis) for r in rows])
    seeds = _ordered([r.get(rule.seed_axis) for r in rows])
    cells = []
    for m in methods:
        for a in attacks:
            ds, em, eb, pm, pb, nm, nb = [], [], [], [], [], [], []
            for s in seeds:
                rm, rb = by.get((m, a, s)), by.get((rule.baseline, a, s))
                if rm is None or rb is None or _effect(rm, "attacked") is None or _effect(rb, "attacked") is None:
                    continue
                e1, e0 = _effect(rm, "attacked"), _effect(rb, "attacked")
                ds.append(e1 - e0)  # type: ignore[operator]
                em.append(e1)
                eb.append(e0)
                pm.append((rm.get("attacked.trigger_acc"), rm.get("attacked.control_acc")))
                pb.append((rb.get("attacked.trigger_acc"), rb.get("attacked.control_acc")))
                nm.append(rm.get("n_trigger"))
                nb.append(rb.get("n_trigger"))
            mean = sum(ds) / len(ds) if ds else math.nan
            if len(ds) < 2:
                reading = f"not decided: {len(ds)} seed pair(s), 2 needed"
            elif all(d > 0 for d in ds) and mean > rule.min_difference:
                reading = "more persistent"
            elif all(d < 0 for d in ds) and mean < -rule.min_difference:
                reading = "less persistent"
            else:
                reading = "no difference shown"
            p = welch_p(em, eb, nm, nb, pm, pb, difference=True) if len(ds) >= 2 else math.nan
            cells.append({"method": m, "attack": a, "seeds": len(ds), "differences": ds, "mean_difference": mean,
                          "effect_method": em, "effect_baseline": eb, "p_welch": p, "reading": reading})
    for c, ph in zip(cells, holm([c["p_welch"] for c in cells]), strict=True):
        c["p_holm"] = ph
    shown = [c for c in cells if c["reading"] in ("more persistent", "less persistent")]
    significant = [c for c in shown if math.isfinite(c["p_holm"]) and c["p_holm"] < rule.alpha]
    if significant:
        verdict = "reproduced: " + "; ".join(f"{c['method']} {c['reading']} than {rule.baseline} at {c['attack']} "
                                             f"(mean D {c['mean_difference']:+.2f}, Holm p {c['p_holm']:.3g})"
                                             for c in significant)
    elif shown:
        verdict = ("not reproduced: the rule's difference appears (" + ", ".join(f"{c['method']} at {c['attack']}"
                   for c in shown) + f") but no Holm-corrected p < {rule.alpha:g}")
    elif any(c["seeds"] >= 2 for c in cells):
        verdict = "not reproduced: no method differs from " + rule.baseline + " by the rule at any attack"
    else:
        verdict = "not decided: too few finished runs with a working watermark"
    return {"rule": rule.as_dict(), "cells": cells, "left_out": notes, "verdict": verdict}


def restoration(rule: DecisionRule, rows: list[dict[str, Any]]) -> dict[str, Any]:
    kept, notes = _screen(rule, rows)
    kept = [r for r in kept if r.get(rule.method_axis, rule.baseline) in (rule.baseline, None)]
    attacks = _ordered([r.get(rule.attack_axis) for r in rows])
    cells, any_full = [], False
    for a in attacks:
        per_seed = []
        for r in (r for r in kept if r.get(rule.attack_axis) == a):
            ea, er = _effect(r, "attacked"), _effect(r, "restore")
            if ea is None or er is None:
                continue
            g = mover(_effect_interval(r, "restore"), _effect_interval(r, "attacked"))
            end, attacked = _f(r.get("restore.trigger_acc")), _f(r.get("attacked.trigger_acc"))
            survived = attacked is not None and attacked >= rule.min_trigger_acc
            holds = not survived and (er - ea) >= rule.min_gain and math.isfinite(g.lo) and g.lo > 0
            full = holds and end is not None and end >= rule.full
            any_full |= full
            per_seed.append({"seed": r.get(rule.seed_axis), "effect_attacked": ea, "effect_restored": er,
                             "gain": er - ea, "gain_lo": g.lo, "gain_hi": g.hi,
                             "trigger_attacked": _f(r.get("attacked.trigger_acc")), "trigger_restored": end,
                             "peak_trigger": _f(r.get("restore.peak_trigger_acc")),
                             "peak_effect": _f(r.get("restore.peak_trigger_effect")),
                             "drift_attacked": _f(r.get("attacked.drift_rel")),
                             "drift_restored": _f(r.get("restore.drift_rel")), "full": full,
                             "survived": survived, "holds": holds})
        holds = [p["holds"] for p in per_seed if not p["survived"]]
        left = len(per_seed) - len(holds)
        if not per_seed:
            reading = "not decided: no finished run with a working watermark"
        elif not holds:
            reading = (f"nothing to restore: the attack left the watermark (trigger accuracy >= "
                       f"{rule.min_trigger_acc:g} after it) in every seed")
        elif len(holds) < 2:  # as for persistence: one seed decides nothing ("in every seed" needs seeds)
            reading = (f"not decided: {len(holds)} seed with a removed watermark, 2 needed (G "
                       f"{'>=' if holds[0] else '<'} {rule.min_gain:g} there)")
        else:
            reading = "reproduced" if all(holds) else "partly" if any(holds) else "not reproduced"
            pending = sum(1 for r in rows if r.get(rule.attack_axis) == a and r.get("status") != Status.FINISHED
                          and r.get(rule.method_axis, rule.baseline) in (rule.baseline, None))
            if pending:  # "in every seed" is read over the seeds run so far: a pending one can change it
                reading += f" so far ({pending} seed(s) not run yet)"
            if left:
                reading += f" ({left} seed(s) where the attack left the watermark not counted)"
        cells.append({"attack": a, "seeds": per_seed, "reading": reading})
    readings = [c["reading"] for c in cells if not c["reading"].startswith("not decided")]
    verdict = ("; ".join(f"{c['attack']}: {c['reading']}" for c in cells) if readings
               else "not decided: too few finished runs with a working watermark")
    verdict += (f". Up to 100% (restoration brings a lost watermark back to trigger accuracy >= {rule.full:g}): "
                + ("reproduced" if any_full else "not reproduced"))
    return {"rule": rule.as_dict(), "cells": cells, "left_out": notes, "verdict": verdict}


def decide(raw_rule: Any, axes: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    rule = parse_rule(raw_rule, axes)
    return persistence(rule, rows) if rule.rule == "persistence" else restoration(rule, rows)


def _num(v: float | None, fmt: str = "+.2f") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)


def markdown(result: dict[str, Any]) -> str:
    """The decision as a Markdown section: the rule, every cell, what was left out, the verdict."""
    rule = result["rule"]
    lines = [f"## Decision rule: {rule['rule']} (declared in the sweep file before the runs)", ""]
    if rule["rule"] == "persistence":
        lines += [f"D = effect(method) - effect({rule['baseline']}) after the attack, per seed. More (less) "
                  f"persistent: D > 0 (< 0) in every seed and mean D > {rule['min_difference']:g} "
                  f"(< -{rule['min_difference']:g}); Welch test with Holm's correction, alpha {rule['alpha']:g}.", "",
                  "| method | attack | seeds | D per seed | mean D | Holm p | reading |", "|---|---|---|---|---|---|---|"]
        for c in result["cells"]:
            ds = ", ".join(f"{d:+.2f}" for d in c["differences"]) or "-"
            lines.append(f"| {c['method']} | {c['attack']} | {c['seeds']} | {ds} | {_num(c['mean_difference'])} | "
                         f"{_num(c['p_holm'], '.3g')} | {c['reading']} |")
    else:
        lines += [f"G = effect after restoration - effect after the attack, per run of {rule['baseline']}, with the "
                  f"MOVER interval of the two Newcombe intervals. Reproduced: G >= {rule['min_gain']:g} and the "
                  f"interval above 0 in every seed. Peaks decide nothing.", "",
                  "| attack | seed | effect attacked | effect restored | G [95%] | trigger acc end (peak) | drift attack / restore | reading |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in result["cells"]:
            for i, p in enumerate(c["seeds"]):
                lines.append(f"| {c['attack']} | {p['seed']} | {_num(p['effect_attacked'])} | {_num(p['effect_restored'])} | "
                             f"{_num(p['gain'])} [{_num(p['gain_lo'])}, {_num(p['gain_hi'])}] | "
                             f"{_num(p['trigger_restored'], '.2f')} ({_num(p['peak_trigger'], '.2f')}) | "
                             f"{_num(p['drift_attacked'], '.3f')} / {_num(p['drift_restored'], '.3f')} | "
                             f"{c['reading'] if i == 0 else ''} |")
            if not c["seeds"]:
                lines.append(f"| {c['attack']} | - | | | | | | {c['reading']} |")
    if result["left_out"]:
        lines += ["", "Left out:", *[f"- {n}" for n in result["left_out"]]]
    lines += ["", f"**Verdict:** {result['verdict']}", ""]
    return "\n".join(lines)
