"""The README's demo table and the figures quoted under it, regenerated from a fresh `wmstudio demo` run.

    python scripts/readme_demo.py           # run the demo, compare with the README (exit 1 when they differ)
    python scripts/readme_demo.py --write   # run the demo, write its table and figures into the README

The demo's numbers are the same by every path (CLI, app, sweep cell, a stage run alone) for the same
seed, device and thread count (tests/test_one_config_one_result.py); the run's thread count is part of
the table's first line (`run.threads` of the demo config: 2).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- demo-table: scripts/readme_demo.py -->", "<!-- /demo-table -->"


def demo_table() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "demo.h5"
        subprocess.run([sys.executable, "-m", "wmstudio", "demo", "--out", str(log), "--quiet"], check=True, cwd=ROOT)
        text = subprocess.run([sys.executable, "-m", "wmstudio", "inspect", str(log)], check=True, cwd=ROOT,
                              capture_output=True, text=True).stdout
    lines = [line.rstrip() for line in text.splitlines() if not line.startswith("---")]
    start = next(i for i, line in enumerate(lines) if line.startswith("stage "))
    return "\n".join(lines[start:start + 4])


def figures(table: str) -> dict[str, str]:
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    ft = re.search(r"(\d\.\d\d) -> (\d\.\d\d)\s+(\d\.\d\d)", rows["finetune"])
    rs = re.search(r"(\d\.\d\d) -> (\d\.\d\d)\s+(\d\.\d\d)", rows["restore"])
    assert ft and rs, table
    return {"before": ft.group(1), "attacked": ft.group(2), "restored": rs.group(2),
            "control_attacked": ft.group(3), "control_restored": rs.group(3)}


def render(readme: str, table: str) -> str:
    f = figures(table)
    block = f"{BEGIN}\n```\n{table}\n```\n{END}"
    readme = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _m: block, readme, flags=re.S)
    readme = re.sub(r"drops trigger accuracy from \d\.\d\d to \d\.\d\d;",
                    f"drops trigger accuracy from {f['before']} to {f['attacked']};", readme)
    readme = re.sub(r"brings it back to \d\.\d\d\.", f"brings it back to {f['restored']}.", readme)
    readme = re.sub(r"is the whole \d\.\d\d and \d\.\d\d,", f"is the whole {f['attacked']} and {f['restored']},", readme)
    readme = re.sub(r"\(\d\.\d\d after the attack and \d\.\d\d after restoration\)",
                    f"({f['control_attacked']} after the attack and {f['control_restored']} after restoration)", readme)
    return readme


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the new figures into the README")
    args = ap.parse_args()
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"{README}: the markers {BEGIN} ... {END} are missing", file=sys.stderr)
        return 2
    new = render(readme, demo_table())
    if args.write:
        README.write_text(new)
        print(f"{README}: demo table and figures written")
        return 0
    if new != readme:
        print(f"{README}: the demo's table or figures differ from a fresh run (python scripts/readme_demo.py --write)")
        return 1
    print(f"{README}: the demo's table and figures match a fresh run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
