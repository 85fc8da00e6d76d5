"""The app's Qt-free controller: run naming, stage chaining from the engine's plan, progress,
the window title, following a growing log, and what differs between compared runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wmstudio.config_io import load_config
from wmstudio.errors import ConfigError
from wmstudio.events import Metrics, RunFinished, RunStarted, StageFinished, StageStarted, Step
from wmstudio.gui.controller import STAGE_CHOICES, StudioController, differing_keys, new_log_path
from wmstudio.gui.series import RunSeries, StageSpan
from wmstudio.resources import example_config
from wmstudio.runlog_reader import RunLogReader


def _choice(stages: tuple[str, ...] | None) -> int:
    return [s for _, s in STAGE_CHOICES].index(stages)


def _shown(ctl: StudioController, log: Path, stages: list[str]) -> None:
    series = RunSeries(log_path=str(log), log_status="finished",
                       stages=[StageSpan(n, 0, 1, "finished") for n in stages])
    assert ctl.adopt(series)


def test_a_later_stage_alone_continues_from_the_shown_log_as_the_engine_plans(tmp_path: Path) -> None:
    ctl = StudioController(tmp_path / "runs")
    log = tmp_path / "first.h5"
    _shown(ctl, log, ["pretrain", "embed"])
    req = ctl.plan_run(load_config(example_config("demo")), _choice(("finetune",)))
    assert req.cfg.model.checkpoint == f"{log}:embed" and "embed weights of first.h5" in req.note
    assert req.stages == ("finetune",) and req.out.parent == tmp_path / "runs"
    assert not ctl.wrote(req.out)
    ctl.begin("run", req)
    ctl.end()
    assert ctl.wrote(req.out) and not ctl.wrote(log)  # its settings are the form's; an opened log's are not
    _shown(ctl, log, ["embed", "finetune"])
    req = ctl.plan_run(load_config(example_config("demo")), _choice(("restore",)))
    assert req.cfg.model.checkpoint == f"{log}:finetune"
    # the whole pipeline, or a checkpoint the user chose, is never rewritten
    assert not ctl.plan_run(load_config(example_config("demo")), _choice(None)).cfg.model.checkpoint
    cfg = load_config(example_config("demo"))
    cfg.model.checkpoint = "mine.pt"
    assert ctl.plan_run(cfg, _choice(("finetune",))).cfg.model.checkpoint == "mine.pt"
    # a log without the stage a stage follows: nothing to continue from, so nothing is attacked or restored
    _shown(ctl, log, ["pretrain"])
    with pytest.raises(ConfigError, match=r"'Restore only' needs the weights an earlier finetune or extract or attack stage left, "
                                          r"and the shown log \(first.h5\) has no"):
        ctl.plan_run(load_config(example_config("demo")), _choice(("restore",)))
    cfg = load_config(example_config("demo"))
    cfg.attack.kind = "prune"
    with pytest.raises(ConfigError, match=r"Removal attack only.*has no embed stage.*model.checkpoint"):
        ctl.plan_run(cfg, _choice(("attack",)))
    # the demo's [attack] kind is fine-tuning: the attack stage alone would run nothing (an empty run log)
    _shown(ctl, log, ["embed", "finetune", "restore"])
    with pytest.raises(ConfigError, match=r"'Removal attack only \(\[attack\] kind\)' would run no stage: \[attack\] "
                                          r"kind is 'finetune'.*'Fine-tune only'"):
        ctl.plan_run(load_config(example_config("demo")), _choice(("attack",)))
    _shown(ctl, log, ["pretrain"])
    assert ctl.plan_run(load_config(example_config("demo")), _choice(("pretrain", "embed"))).stages  # a fresh embed


def test_new_logs_never_overwrite_one_another(tmp_path: Path) -> None:
    first = new_log_path(tmp_path, "my run / 1", now=0)
    assert first.name.startswith("my-run-1-") and first.suffix == ".h5"
    first.write_bytes(b"")
    second = new_log_path(tmp_path, "my run / 1", now=0)
    assert second != first and not second.exists()


def _run_events() -> list:
    events = [RunStarted("/x/run.h5", "cpu", ("embed", "finetune"))]
    for k, stage in enumerate(("embed", "finetune")):
        events.append(StageStarted(stage, 1, 10, 10 * k))
        events += [Step(stage, 1, i, 10 * k + i, 0.5, 0.1, 10) for i in range(1, 6)]
        if stage == "embed":
            events += [Step(stage, 1, i, i, 0.5, 0.1, 10) for i in range(6, 11)]
            events.append(Metrics(stage, 1.0, 10, {"test_acc": 0.9, "trigger_acc": 1.0}))
            events.append(StageFinished(stage, "finished"))
    return events


def test_events_fill_the_series_and_one_progress_description() -> None:
    clock = iter(range(1000))
    ctl = StudioController(Path("runs"))
    ctl.tracker.clock = lambda: float(next(clock))
    ctl.begin("run")
    ctl.tracker.clock = lambda: float(next(clock))
    lines = ctl.apply(_run_events())
    assert lines[0].startswith("run -> /x/run.h5") and any("[embed] epoch 1: test 0.900" in x for x in lines)
    assert [s.name for s in ctl.series.stages] == ["embed", "finetune"] and len(ctl.series.eval_rows) == 1
    state = ctl.tracker.state
    assert (state.stage, state.done, state.total) == ("finetune", 5, 10)
    assert state.overall == pytest.approx(0.75)  # one stage of two done, half of the second
    line = ctl.tracker.status_line()
    assert "overall 75%" in line and "left in stage" in line and "step 5/10" in line
    ctl.set_paused(True)
    assert ctl.tracker.status_line().startswith("paused")
    ctl.apply([RunFinished("/x/run.h5", "finished")])
    assert ctl.tracker.state.overall == 1.0 and ctl.end() == "run" and not ctl.busy


def test_the_title_names_the_shown_log_and_its_state(tmp_path: Path) -> None:
    ctl = StudioController(tmp_path)
    assert ctl.title() == "Watermark Studio"
    ctl.adopt(RunSeries(log_path=str(tmp_path / "a.h5"), log_status="cancelled"))
    assert ctl.title().startswith("a.h5 (cancelled)")
    ctl.adopt(RunSeries(log_path=str(tmp_path / "b.h5"), log_status="running"))
    assert ctl.following and ctl.title().startswith("b.h5 (running)")
    ctl.begin("run")
    assert not ctl.adopt(RunSeries(log_path=str(tmp_path / "c.h5")))  # a job's log stays shown


def test_following_a_log_reads_only_rows_not_held(demo_run: Path) -> None:
    series = RunSeries.from_log(demo_run)
    rows = series.read_new(demo_run)
    assert all(len(rec.eval.get("global_step", [])) == 0 and len(rec.train.get("loss", [])) == 0
               for rec in rows.stages)
    revision = series.revision
    assert not series.merge(rows) and series.revision == revision
    full = sum(len(r.eval["global_step"]) for r in RunLogReader(demo_run).stages())
    assert len(series.eval_rows) == full


def test_landscape_kinds_a_log_cannot_have_are_named_with_the_engines_reason() -> None:
    from wmstudio.gui.controller import landscape_kinds

    only_embed = landscape_kinds(["embed"])
    assert only_embed["random"] == "" and "3" in only_embed["plane"] and only_embed["line"]
    assert not any(landscape_kinds(["embed", "finetune", "restore"]).values())
    assert all(landscape_kinds([]).values())  # no saved weights: no landscape at all


def test_compare_names_the_settings_that_differ() -> None:
    a = {"run": {"name": "a", "seed": 1}, "finetune": {"lr": 0.01, "epochs": 3}, "model": {"options": {}}}
    b = {"run": {"name": "b", "seed": 1}, "finetune": {"lr": 0.04, "epochs": 3}, "model": {"options": {}}}
    assert differing_keys([a, b]) == ["finetune.lr"]
    assert differing_keys([a]) == []


def test_the_controller_and_progress_need_no_qt() -> None:
    code = ("import sys, wmstudio.gui.controller, wmstudio.gui.log_reading, wmstudio.progress;"
            "print([m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_stage_alone_continues_from_the_stage_the_plan_says_it_follows() -> None:
    """Chaining comes from the engine's plan: an attack of any kind starts from the watermarked model,
    restoration from whichever attack the log holds (the latest one)."""
    from wmstudio.pipeline import chained_checkpoint

    assert chained_checkpoint(["finetune", "restore"], "r.h5", ["embed"]) == "r.h5:embed"
    assert chained_checkpoint(["attack"], "r.h5", ["pretrain", "embed"]) == "r.h5:embed"
    assert chained_checkpoint(["restore"], "r.h5", ["embed", "attack"]) == "r.h5:attack"
    assert chained_checkpoint(["restore"], "r.h5", ["embed", "extract"]) == "r.h5:extract"
    assert chained_checkpoint(["restore"], "r.h5", ["embed"]) is None
    assert chained_checkpoint(["embed"], "r.h5", ["embed", "finetune"]) is None
    assert ("Removal attack only ([attack] kind)", ("attack",)) in STAGE_CHOICES
