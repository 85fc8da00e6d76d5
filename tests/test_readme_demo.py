"""The README's demo table is what `wmstudio demo` prints now (scripts/readme_demo.py writes it)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _script():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("readme_demo", ROOT / "scripts" / "readme_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numbers(table: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:e[-+]\d+)?", table)]


def _rows(table: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in table.splitlines()[1:]}


def test_the_readme_shows_the_demo_as_it_runs_now() -> None:
    """Exact on the CPU and thread count that wrote it (``scripts/readme_demo.py`` checks that). Across
    processors the float summation order differs and the attack's outcome with it: the fine-tuned trigger
    accuracy was 0.43 on the machine that wrote the table and 0.49 on another (p 1.1e-17 and 5.2e-23). So
    here the table's shape is exact, the accuracies, control and drift within 0.02, the trigger accuracies
    and effects within 0.1, and the story the README tells holds in the fresh run: the watermark is embedded,
    the attack removes much of it, restoration brings part back, every stage's p-value far below 0.01."""
    rd = _script()
    readme = (ROOT / "README.md").read_text()
    shown = readme.split(rd.BEGIN, 1)[1].split(rd.END, 1)[0].strip().strip("`").strip()
    fresh = rd.demo_table()
    old, new = _rows(shown), _rows(fresh)
    assert [r[:4] for r in old.values()] == [r[:4] for r in new.values()]  # stage, status, epochs, steps
    for stage in new:
        # test acc, trigger before -> after, control, effect, drift L2, relative, cosine, p-value
        (t0, b0, a0, c0, e0, l0, r0, k0, _p0), (t1, b1, a1, c1, e1, l1, r1, k1, p1) = (
            [float(x) for x in row[4:] if x != "->"] for row in (old[stage], new[stage]))
        for x, y in ((t0, t1), (c0, c1), (r0, r1), (k0, k1)):
            assert x == pytest.approx(y, abs=0.02), (stage, shown, fresh)
        assert l0 == pytest.approx(l1, rel=0.05), (stage, shown, fresh)
        for x, y in ((b0, b1), (a0, a1), (e0, e1)):
            assert x == pytest.approx(y, abs=0.1), (stage, shown, fresh)
        assert p1 < 0.01, fresh
    f = rd.figures(fresh)
    assert float(f["before"]) >= 0.95 and float(f["attacked"]) <= float(f["before"]) - 0.3
    assert float(f["restored"]) >= float(f["attacked"]) + 0.1
    f = rd.figures(shown)
    assert f"from {f['before']} to {f['attacked']};" in readme and f"back to {f['restored']}." in readme
