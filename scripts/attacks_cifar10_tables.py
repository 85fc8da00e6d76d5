"""The tables of docs/attacks_cifar10_small.md, printed from the comparison's cells.csv (so the page's numbers
come from the data, not from hand).

    .venv/bin/python scripts/attacks_cifar10_tables.py [docs/sweeps/attacks_cifar10/cells.csv]
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path


def _iv(row: dict[str, str], key: str, kind: str, signed: bool = False) -> str:
    mean = row.get(f"{key}.mean", "")
    if mean in ("", "not recorded"):
        return "not recorded" if mean == "not recorded" else ""
    lo, hi = row.get(f"{key}.{kind}_lo", ""), row.get(f"{key}.{kind}_hi", "")
    fmt = "+.2f" if signed else ".2f"
    text = format(float(mean), fmt)
    if lo not in ("", "nan") and hi not in ("", "nan") and not math.isnan(float(lo)):
        text += f" [{format(float(lo), fmt)}, {format(float(hi), fmt)}]"
    return text


def table(rows: list[dict[str, str]], method: str) -> str:
    head = ("| attack | seeds kept (excluded) | trigger acc attacked | effect attacked | trigger acc restored "
            "| effect restored | gain | test acc attacked | drift (attack) |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        if r["embed.method"] != method:
            continue
        seeds = f"{r['seeds']} ({r['excluded_runs']})"
        if r["seeds"] == "0":
            lines.append(f"| {r['attack']} | {seeds} | every run collapsed: no reading | | | | | | |")
            continue
        drift = (f"{float(r['attacked.drift_rel.mean']):.2f}" if r.get("attacked.drift_rel.mean") not in ("", None)
                 else "")
        lines.append("| " + " | ".join([
            r["attack"], seeds, _iv(r, "attacked.trigger_acc", "logit_t95"),
            _iv(r, "attacked.trigger_effect", "atanh_t95", True), _iv(r, "restore.trigger_acc", "logit_t95"),
            _iv(r, "restore.trigger_effect", "atanh_t95", True), _iv(r, "gain", "atanh_t95", True),
            _iv(r, "attacked.test_acc", "logit_t95"), drift]) + " |")
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/sweeps/attacks_cifar10/cells.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for method in dict.fromkeys(r["embed.method"] for r in rows):
        print(f"**{method}**\n\n{table(rows, method)}\n")


if __name__ == "__main__":
    main()
