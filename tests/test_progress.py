"""One description of progress for the CLI and the app: the tracker's words, time left, overall share."""

from __future__ import annotations

import io
import math

import pytest

from wmstudio.events import (
    LandscapeFinished,
    LandscapePoints,
    LandscapeStarted,
    Metrics,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    Step,
)
from wmstudio.progress import ProgressPrinter, ProgressTracker, fmt_time, time_left


def test_one_time_left_formula() -> None:
    assert time_left(10.0, 0.25) == pytest.approx(30.0)
    assert math.isinf(time_left(3.0, 0.0))
    assert fmt_time(3725) == "1:02:05" and fmt_time(65) == "01:05" and fmt_time(math.inf) == "--:--"


def test_the_cli_prints_the_trackers_lines() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out)
    for e in (RunStarted("run.h5", "cpu", ("embed",)), StageStarted("embed", 2, 5, 0),
              Step("embed", 1, 1, 1, 0.9, 0.1, 10), Metrics("embed", 0.5, 2, {"test_acc": 0.5}),
              Metrics("embed", 1.0, 5, {"test_acc": 0.8, "trigger_acc": 0.9}), StageFinished("embed", "finished"),
              RunFinished("run.h5", "finished")):
        printer(e)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("run -> run.h5") and lines[1] == "[embed] 2 epochs x 5 steps"
    assert lines[2].startswith("[embed] epoch 1: test 0.800  trigger 0.900")  # per-step rows are not worded
    assert lines[3].startswith("[embed] finished in ") and lines[4] == "run finished -> run.h5"


def test_a_landscape_has_a_time_estimate_and_finishes_at_full_progress() -> None:
    now = [0.0]
    t = ProgressTracker(clock=lambda: now[0])
    assert "400 points" in t.update(LandscapeStarted("run.h5", "plane", "plane", (20, 20), 0))
    now[0] = 10.0
    assert t.update(LandscapePoints("plane", 0, (0,), {}, 100, 400)) is None
    assert t.state.seconds_left == pytest.approx(30.0) and "00:30 left" in t.status_line()
    t.set_paused(True)
    now[0] = 100.0  # paused time does not count
    t.set_paused(False)
    t.update(LandscapePoints("plane", 1, (1,), {}, 200, 400))
    assert t.state.seconds_left == pytest.approx(10.0)  # 10 s of work did half
    t.update(LandscapeFinished("plane", "finished", 20.0))
    assert t.state.overall == 1.0 and t.status_line().endswith("finished")


def test_a_landscape_written_to_a_file_shows_its_levels_as_plain_lines() -> None:
    """Not a terminal (a log file, CI): no bar, but a line when a level starts, so the progress is seen."""
    import io

    from wmstudio.events import LandscapePoints, LandscapeStarted
    from wmstudio.progress import ProgressPrinter

    out = io.StringIO()
    p = ProgressPrinter(out)
    p(LandscapeStarted(name="random", kind="random", shape=(3, 3), done=0, log_path="x.h5"))
    for level, done in ((0, 1), (0, 2), (1, 5), (2, 9)):
        p(LandscapePoints(name="random", level=level, indices=(0,), values={}, done=done, total=9))
    lines = [ln for ln in out.getvalue().splitlines() if "level" in ln]
    assert [ln.split("level ")[1][0] for ln in lines] == ["0", "1", "2"] and "\r" not in out.getvalue()
    assert "9/9 points" in lines[-1]
