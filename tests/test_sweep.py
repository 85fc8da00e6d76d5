from __future__ import annotations

import math

import pytest

from wmstudio.errors import ConfigError
from wmstudio.sweep import expand, load_sweep, run_sweep, write_report
from wmstudio.sweep.records import read_json
from wmstudio.sweep.report import collect

SWEEP = """
[sweep]
name = "two by two"
base = "demo"
[base]
embed.epochs = 6
finetune.epochs = 2
restore.epochs = 2
[axes]
"trigger.scheme" = ["content", "noise"]
"finetune.lr" = [0.01, 0.03]
"""


def test_axes_expand_to_runs_sharing_embeds(tmp_path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    spec = load_sweep(f)
    assert len(spec.runs) == 4 and spec.swept() == ["trigger.scheme", "finetune.lr"]
    assert len({r.run_id for r in spec.runs}) == 4
    groups = spec.embed_groups()
    assert len(groups) == 2  # one watermarked model per scheme; the lr axis only changes the attack
    for r in spec.runs:
        assert r.config["finetune"]["lr"] == r.values["finetune.lr"]
        assert r.config["embed"]["epochs"] == 6 and r.config["trigger"]["scheme"] == r.values["trigger.scheme"]
    with pytest.raises(ConfigError, match="axes.finetune.lrr"):
        expand("x", {}, {"finetune.lrr": [0.1]})
    with pytest.raises(ConfigError, match="axes.finetune.lr"):
        expand("x", {}, {"finetune.lr": []})
    bad = expand("x", {}, {"trigger.scheme": ["content", "adversarial"]})  # adversarial needs clean_epochs
    assert [bool(r.error) for r in bad.runs] == [False, True] and "embed.clean_epochs" in bad.runs[1].error


def test_sweep_on_ray_report_skip_and_failure(tmp_path) -> None:
    pytest.importorskip("ray")
    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    out = tmp_path / "out"
    summary = run_sweep(load_sweep(f), out, workers=2)
    assert (summary.finished, summary.failed, summary.skipped) == (4, 0, 0)
    # the data set went into the object store once, and each watermarked model's log once
    from wmstudio.data import load_dataset

    digits = load_dataset("digits")
    data_bytes = sum(t.numel() * t.element_size() for p in (digits.train, digits.test) for t in (p.images, p.labels))
    embeds = sum(p.stat().st_size for p in (out / "embeds").glob("*.h5"))
    assert summary.bytes_sent == data_bytes + embeds
    assert summary.bytes_returned >= sum(p.stat().st_size for p in out.rglob("*.h5"))
    # the attacks' logs name the driver's embed log, not the worker's copy of it
    import h5py

    from wmstudio.runlog_reader import RunLogReader

    for log in (out / "runs").glob("*.h5"):
        with h5py.File(log, "r", locking=False) as h5:
            for group in [h5, h5["trigger"], *(h5["stages"][n] for n in h5["stages"])]:
                assert not any("wmstudio-run-" in str(v) for v in group.attrs.values()), group.name
        reader = RunLogReader(log)
        embed = out / "embeds" / f"{read_json(log.with_suffix('.json'))['embed_id']}.h5"
        assert __import__("json").loads(reader.attrs["model_json"])["checkpoint"]["source"] == f"{embed}:embed"
        assert reader.trigger()["params"]["from_log"] == str(embed)
    rep = write_report(out)
    rows = rep["rows"]
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    from wmstudio.source_pin import source_fingerprint

    # every run ran the source the sweep started with
    assert {r["source"] for r in rows} == {source_fingerprint()}
    assert f"The 4 runs that recorded it ran one engine source, {source_fingerprint()}" in (out / "report.md").read_text()
    for r in rows:
        for key in ("watermarked.trigger_acc", "finetune.trigger_acc", "restore.trigger_acc", "restore.test_acc",
                    "finetune.drift_rel", "restore.p_value"):
            assert r[key] is not None and math.isfinite(r[key]), (key, r)
        assert r["watermarked.trigger_acc"] >= 0.9
    assert {(r["trigger.scheme"], r["finetune.lr"]) for r in rows} == {
        ("content", 0.01), ("content", 0.03), ("noise", 0.01), ("noise", 0.03)}
    csv_lines = (out / "report.csv").read_text().splitlines()
    assert len(csv_lines) == 5
    md = (out / "report.md").read_text()
    assert md.count("| finished |") == 4 and "persistence_matrix.png" in md
    for name in ("persistence_matrix", "drift_vs_restored"):
        assert (out / f"{name}.png").stat().st_size > 5000 and (out / f"{name}.svg").stat().st_size > 5000
    # the two attacks on one scheme started from the same watermarked model and triggers
    recs = [read_json(out / "runs" / f"{r['run_id']}.json") for r in rows]
    content = [r for r in recs if r["values"]["trigger.scheme"] == "content"]
    assert content[0]["embed_id"] == content[1]["embed_id"]
    # a second invocation skips all four
    again = run_sweep(load_sweep(f), out, workers=2)
    assert (again.skipped, again.finished) == (4, 0)
    # a run that fails is recorded with its error while the others finish
    f2 = tmp_path / "fail.toml"
    f2.write_text(SWEEP.replace('"trigger.scheme" = ["content", "noise"]', '"trigger.scheme" = ["content"]')
                  .replace("[0.01, 0.03]", "[0.01, 1e30]"))
    out2 = tmp_path / "out2"
    s2 = run_sweep(load_sweep(f2), out2, workers=2)
    assert (s2.finished, s2.failed) == (1, 1)
    _, _, rows2 = collect(out2)
    failed = [r for r in rows2 if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["finetune.lr"] == 1e30 and "finetune.lr" in failed[0]["error"]
    ok = [r for r in rows2 if r["status"] == "finished"]
    assert ok[0]["restore.trigger_acc"] is not None


def test_invalid_runs_are_recorded_without_running(tmp_path) -> None:
    spec = expand("bad", {}, {"trigger.scheme": ["adversarial"]})
    summary = run_sweep(spec, tmp_path / "out")
    assert summary.failed == 1 and summary.finished == 0
    _, _, rows = collect(tmp_path / "out")
    assert rows[0]["status"] == "failed" and "clean_epochs" in rows[0]["error"]


def test_log_changes_rebuild_the_file_exactly() -> None:
    import random

    from wmstudio.sweep import delta

    rng = random.Random(0)
    first = rng.randbytes(300_000)
    grown = bytearray(first + rng.randbytes(150_000))
    grown[1000:1010] = b"x" * 10  # a metadata block rewritten, and data appended
    shrunk = bytes(grown[:200_000])
    image = b""
    for current in (first, bytes(grown), shrunk, bytes(grown)):
        change = delta.diff(image, current, block=4096)
        image = delta.apply(image, change)
        assert image == current
    assert delta.nbytes(delta.diff(first, bytes(grown), block=4096)) < 160_000  # not the whole file again


def test_files_the_config_names_travel_through_ray_and_the_log_names_them(tmp_path) -> None:
    """A checkpoint and a trigger folder are read by the driver and sent: the workers never open the paths
    (they are deleted as soon as the tasks are out), and the logs record them as a local run would."""
    import shutil

    import numpy as np
    import torch
    from PIL import Image

    from wmstudio.cli import main
    from wmstudio.config_io import load_config
    from wmstudio.model_build import build_from_config
    from wmstudio.resources import example_config
    from wmstudio.runlog_reader import RunLogReader

    pytest.importorskip("ray")
    ckpt = tmp_path / "mine" / "start.pt"
    ckpt.parent.mkdir()
    torch.save(build_from_config(load_config(example_config("demo")), 1, 10, 8).state_dict(), ckpt)
    folder = tmp_path / "mine" / "triggers"
    rng = np.random.default_rng(0)
    for i in range(10):
        (folder / str(i)).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / str(i) / "a.png")
    f = tmp_path / "s.toml"
    f.write_text(SWEEP.replace('[axes]\n"trigger.scheme" = ["content", "noise"]',
                               f'model.checkpoint = "{ckpt}"\ntrigger.scheme = "folder"\ntrigger.folder = "{folder}"\n'
                               '[axes]').replace("[0.01, 0.03]", "[0.01]"))
    out = tmp_path / "out"
    size = ckpt.stat().st_size
    gone = []

    def progress(text: str) -> None:
        if "runs to do" in text and not gone:  # every task is out: the files have been sent
            shutil.rmtree(tmp_path / "mine")
            gone.append(text)

    summary = run_sweep(load_sweep(f), out, workers=1, progress=progress)
    assert gone and (summary.finished, summary.failed) == (1, 0), summary.failures
    assert summary.bytes_sent > size  # the checkpoint and the folder went into the object store
    embed = RunLogReader(next((out / "embeds").glob("*.h5")))
    assert f'checkpoint = "{ckpt}"' in embed.attrs["config_toml"] and f'folder = "{folder}"' in embed.attrs["config_toml"]
    assert __import__("json").loads(embed.attrs["model_json"])["checkpoint"]["source"] == str(ckpt)
    assert embed.trigger()["scheme"] == "folder"
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--resource", "worker=lots"]) == 2


def test_a_run_lost_with_its_worker_is_run_again_and_recorded(tmp_path) -> None:
    import os
    import signal
    import threading
    import time

    pytest.importorskip("ray")
    f = tmp_path / "s.toml"
    f.write_text(SWEEP.replace('"trigger.scheme" = ["content", "noise"]', '"trigger.scheme" = ["content"]')
                 .replace("[0.01, 0.03]", "[0.01]").replace("finetune.epochs = 2", "finetune.epochs = 4"))
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_the_attack() -> None:  # SIGKILL the Ray worker process running the attack, once
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            for p in (out / "runs").glob("*.json") if (out / "runs").is_dir() else []:
                rec = read_json(p) or {}
                if rec.get("status") == "running" and rec.get("ran_on", {}).get("pid"):
                    os.kill(rec["ran_on"]["pid"], signal.SIGKILL)
                    killed.append(rec["ran_on"]["pid"])
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_attack, daemon=True)
    killer.start()
    # shared_data: the workers read the data set themselves (a root mounted on every node)
    summary = run_sweep(load_sweep(f), out, workers=1, retries=1, progress=lambda _t: None, shared_data=True)
    killer.join()
    assert killed
    assert summary.bytes_sent == next((out / "embeds").glob("*.h5")).stat().st_size  # no data set sent
    assert (summary.finished, summary.failed) == (1, 0)
    (run_id, losses), = summary.retried.items()
    assert len(losses) == 1
    rec = read_json(out / "runs" / f"{run_id}.json")
    assert rec["status"] == "finished" and rec["ran_on"]["pid"] != killed[0]
    assert len(rec["attempts"]) == 1 and rec["attempts"][0]["ran_on"]["pid"] == killed[0]
    assert rec["finals"]["restore.trigger_acc"] is not None


def _fake_ray_runner(monkeypatch, submitted: list[tuple[str, str]]) -> None:
    """run_sweep with Ray and its dispatcher replaced: one worker ends tasks in submission order at once."""
    from wmstudio.sweep import runner
    from wmstudio.sweep.dispatch import Finished
    from wmstudio.sweep.records import write_json

    class FakeRay:
        def put(self, value: object) -> object:
            return value

        def remote(self, **_kw: object):
            return lambda fn: fn

        def cluster_resources(self) -> dict[str, float]:
            return {"CPU": 1.0}

    class FakeDispatcher:
        def __init__(self, *_a: object, **_kw: object) -> None:
            self.queue: list = []
            self.retried: dict = {}
            self.returned = 0

        def __len__(self) -> int:
            return len(self.queue)

        def tasks(self) -> list:
            return list(self.queue)

        def submit(self, task, data_refs, embed=None, files=None) -> None:
            submitted.append((task.kind, task.plan["values"].get("trigger.scheme")))
            self.queue.append(task)

        def poll(self, timeout: float) -> list:  # the one worker ends the oldest task; its record is written
            task = self.queue.pop(0)
            rec = {**task.base_record(), "status": "finished", "seconds": 1.0, "finals": {}}
            write_json(task.rec_path, rec)
            return [Finished(task, rec, b"log")]

        def cancel(self) -> int:
            return 0

        def close(self) -> None:
            pass

    monkeypatch.setattr(runner, "init_ray", lambda *_a: FakeRay())
    monkeypatch.setattr(runner, "shutdown_ray", lambda: None)
    monkeypatch.setattr(runner, "Dispatcher", FakeDispatcher)


def test_attacks_on_finished_embeds_are_submitted_before_new_embeds(tmp_path, monkeypatch) -> None:
    """Ray starts tasks in submission order: a resumed sweep first attacks the watermarked models it already
    has, so stopping it part-way leaves whole embed groups (here: 'content' was embedded by an earlier run)."""
    from wmstudio.sweep import runner

    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    spec = load_sweep(f)
    content = next(r.embed_id for r in spec.runs if r.values["trigger.scheme"] == "content")
    submitted: list[tuple[str, str]] = []

    _fake_ray_runner(monkeypatch, submitted)
    monkeypatch.setattr(runner, "is_finished", lambda rec, _log: rec.parent.name == "embeds" and rec.stem == content)
    (tmp_path / "out" / "embeds").mkdir(parents=True)
    (tmp_path / "out" / "embeds" / f"{content}.h5").write_bytes(b"log")  # sent to its attacks as bytes
    summary = runner.run_sweep(spec, tmp_path / "out", workers=1)
    assert summary.finished == 4
    assert submitted == [("attack", "content"), ("attack", "content"), ("embed", "noise"),
                         ("attack", "noise"), ("attack", "noise")]


def test_only_runs_part_of_a_sweep_and_the_rest_later_into_the_same_folder(tmp_path, monkeypatch) -> None:
    """--only AXIS=VALUE: a long sweep run part by part (e.g. seed by seed) into one folder; sweep.json lists
    every run, so the report shows the rest as pending, and a later part resumes into the folder."""
    from wmstudio.sweep import runner
    from wmstudio.sweep.spec import select_runs

    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    spec = load_sweep(f)
    assert select_runs(spec, []) is None
    only = select_runs(spec, ["trigger.scheme=noise"])
    assert only == {r.run_id for r in spec.runs if r.values["trigger.scheme"] == "noise"} and len(only) == 2
    assert select_runs(spec, ["trigger.scheme=noise", "trigger.scheme=content", "finetune.lr=0.03"]) == {
        r.run_id for r in spec.runs if r.values["finetune.lr"] == 0.03}
    with pytest.raises(ConfigError, match=r"--only.*'seed' is not an axis.*trigger.scheme, finetune.lr"):
        select_runs(spec, ["seed=1"])
    with pytest.raises(ConfigError, match=r"--only.*'stamp' is not a value of axis 'trigger.scheme'.*content, noise"):
        select_runs(spec, ["trigger.scheme=stamp"])
    with pytest.raises(ConfigError, match="--only.*AXIS=VALUE"):
        select_runs(spec, ["noise"])

    submitted: list[tuple[str, str]] = []
    _fake_ray_runner(monkeypatch, submitted)
    finished: set[str] = set()
    monkeypatch.setattr(runner, "is_finished", lambda rec, _log: rec.stem in finished)
    out = tmp_path / "out"
    summary = runner.run_sweep(spec, out, workers=1, only=only)
    assert (summary.total, summary.finished) == (2, 2)
    assert submitted == [("embed", "noise"), ("attack", "noise"), ("attack", "noise")]
    assert len(read_json(out / "sweep.json")["runs"]) == 4
    _, _, rows = collect(out)
    assert sorted(r["status"] for r in rows) == ["finished", "finished", "pending", "pending"]
    finished |= {p.stem for p in (out / "runs").glob("*.json")} | {p.stem for p in (out / "embeds").glob("*.json")}
    submitted.clear()
    summary = runner.run_sweep(spec, out, workers=1)  # the rest: only the content half runs
    assert (summary.total, summary.skipped, summary.finished) == (4, 2, 2)
    assert submitted == [("embed", "content"), ("attack", "content"), ("attack", "content")]


def test_new_embeds_wait_for_a_free_worker_so_attacks_run_before_the_next_embed(tmp_path, monkeypatch) -> None:
    """Embeds are held back by the driver (Ray would start them all before any attack): each embed's attacks
    run before the next embed starts, so a sweep stopped part-way leaves whole embed groups."""
    from wmstudio.sweep import runner

    f = tmp_path / "s.toml"
    f.write_text(SWEEP)
    submitted: list[tuple[str, str]] = []
    _fake_ray_runner(monkeypatch, submitted)
    monkeypatch.setattr(runner, "is_finished", lambda _rec, _log: False)
    summary = runner.run_sweep(load_sweep(f), tmp_path / "out", workers=1)
    assert summary.finished == 4
    assert submitted == [("embed", "content"), ("attack", "content"), ("attack", "content"),
                         ("embed", "noise"), ("attack", "noise"), ("attack", "noise")]
