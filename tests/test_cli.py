from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from wmstudio.cli import main
from wmstudio.config import ExperimentConfig
from wmstudio.config_io import load_config, to_toml
from wmstudio.runlog_reader import RunLogReader


def test_config_example_prints_a_loadable_file(capsys, tmp_path) -> None:
    assert main(["config", "--example"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "ex.toml").write_text(text)
    assert load_config(tmp_path / "ex.toml") == ExperimentConfig()
    assert main(["config", "--check", str(tmp_path / "ex.toml")]) == 0


def test_run_with_overrides_then_inspect(capsys, tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(ExperimentConfig()))
    out = tmp_path / "run.h5"
    code = main(["run", str(cfg), "--out", str(out), "--quiet", "--set", "embed.epochs=2", "--set", "finetune.epochs=1",
                 "--set", "restore.epochs=1", "--set", "trigger.scheme=noise", "--set", "run.name=cli test"])
    assert code == 0
    r = RunLogReader(out)
    assert r.trigger()["scheme"] == "noise" and r.attrs["run_name"] == "cli test"
    assert load_config(data=__import__("json").loads(r.config_json)).embed.epochs == 2
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    for stage in ("embed", "finetune", "restore"):
        assert f"\n{stage:<10}finished" in text
    assert "noise x100" in text


def test_bad_input_exits_2_naming_the_field(capsys, tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[finetune]\nvariant = 'XX'\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert "finetune.variant" in err and "FTAL" in err and "bad.toml" in err
    assert not (tmp_path / "x.h5").exists()
    assert main(["inspect", str(tmp_path / "nothing.h5")]) == 2
    assert "nothing.h5: no such run log" in capsys.readouterr().err


def test_trigger_export_from_a_log(tmp_path, capsys) -> None:
    out = tmp_path / "run.h5"
    main(["demo", "--out", str(out), "--quiet", "--set", "embed.epochs=1", "--set", "finetune.enabled=false",
          "--set", "restore.enabled=false"])
    assert main(["triggers", str(out), "--out", str(tmp_path / "trig")]) == 0
    assert len(list((tmp_path / "trig").glob("*.png"))) == 100


def test_a_killed_run_leaves_a_readable_log(tmp_path) -> None:
    out = tmp_path / "killed.h5"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "wmstudio", "demo", "--out", str(out), "--set", "embed.epochs=200"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "[embed] epoch 3:" in line:
                break
        else:
            pytest.fail("the run never reached epoch 3")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    r = RunLogReader(out)
    assert r.status == "running"  # never closed by the engine ...
    embed = r.stage("embed")
    assert len(embed.eval["trigger_acc"]) >= 4  # ... yet every finished epoch is there
    assert len(embed.train["loss"]) >= 3 * 8


def test_gui_subcommand_passes_its_options_to_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    """`wmstudio gui --demo ...` reaches the app's own parser (argparse's REMAINDER used to drop leading options)."""
    with pytest.raises(SystemExit) as exc:
        main(["gui", "--help"])
    assert exc.value.code == 0
    assert "--demo" in capsys.readouterr().out
