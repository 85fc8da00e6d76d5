"""A sweep runs one engine: each worker pins the source it loaded, a run whose worker loaded another
source is refused before it runs, each record names its source, and the report says when runs differ
(a sweep's worker once imported a module edited under the running sweep: an ImportError mid-run)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wmstudio import source_pin
from wmstudio.source_pin import pin_engine, source_fingerprint

PACKAGE = Path(source_pin.__file__).resolve().parent


def test_the_fingerprint_follows_the_engine_source_not_the_gui(tmp_path) -> None:
    copy = tmp_path / "wmstudio"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_fingerprint(copy)
    assert before == source_fingerprint(PACKAGE) and len(before) == 16
    (copy / "gui" / "app.py").write_text("# the app's code never runs in a sweep\n")
    assert source_fingerprint(copy) == before
    with (copy / "pipeline.py").open("a") as f:
        f.write("\n# edited under a running sweep\n")
    assert source_fingerprint(copy) != before


def test_a_pinned_process_keeps_its_fingerprint_whatever_the_disk_says(monkeypatch) -> None:
    import sys

    pinned = pin_engine()
    assert "wmstudio.pipeline" in sys.modules and "wmstudio.attacks.prune" in sys.modules  # loaded, not lazy
    monkeypatch.setattr(source_pin, "source_fingerprint", lambda root=None: "0" * 16)
    assert pin_engine() == pinned


def test_a_worker_that_loaded_another_source_refuses_the_run() -> None:
    from wmstudio.sweep.tasks import run_task

    plan = {"run_id": "r1", "values": {"seed": "0"}, "config": {}, "source": "f" * 16}
    messages = list(run_task("attack", plan, 1, {}))
    assert [m["event"] for m in messages] == ["started", "done"]
    record = messages[-1]["record"]
    assert record["status"] == "failed" and record["source"] == pin_engine()
    assert f"(source {'f' * 16})" in record["error"] and "nothing ran" in record["error"]


def test_the_report_says_when_runs_ran_different_sources() -> None:
    from wmstudio.sweep.report_markdown import _source_lines

    assert _source_lines([{"source": ""}]) == []
    one = _source_lines([{"source": "ab12"}, {"source": "ab12"}, {"source": ""}])
    assert one[0].startswith("The 2 runs that recorded it ran one engine source, ab12")
    two = _source_lines([{"source": "ab12"}, {"source": "cd34"}])
    assert "2 versions of the engine's source" in two[0] and "may not be comparable" in two[0]
