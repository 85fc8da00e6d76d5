"""Seeded fuzzing: random config mutations, and byte flips of a checkpoint (.pt, .safetensors), of a
run log, of an export's metadata, of a null-model file and of a sweep folder's JSON files. Every case must end in success or one clear ``WmStudioError``: never another exception, a
hang or a crash. The figures (cases tried, outcomes) are printed.

Config cases run in-process (pure Python). Byte-flipped files are loaded by ``fuzz_worker.py`` in a
subprocess, so that a segfault or a hang in a native reader (zip, HDF5, safetensors) is caught and
named by its case instead of taking the test run down. A failure names the seed and case: rerun it
with ``python tests/hostile/fuzz_worker.py KIND BASE WORKDIR SEED CASE 1``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from wmstudio.cli import main
from wmstudio.config import ExperimentConfig
from wmstudio.config_check import check_against_data
from wmstudio.config_io import load_config
from wmstudio.config_io import to_toml as config_toml
from wmstudio.errors import WmStudioError

from .fuzz_worker import mutate

pytestmark = pytest.mark.fuzz

SEED = 20261125
CONFIG_CASES = 400
FILE_CASES = 150
PEAK_MB = 3000  # a worker that imports torch and reads small files stays near 1 GB; a crafted size would not
WORKER = Path(__file__).with_name("fuzz_worker.py")
ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- config mutations

VALUES: list[object] = [math.nan, math.inf, -math.inf, 1e308, -1e308, 10**30, -(10**30), 1e23, 2**31, 2**63, -5, -1,
                        0, 1, 3, 0.5, 3.0, 1e-320, True, False, "", "x", "nan", "../../etc", "\u00e9\u0000", [], [1, "a"],
                        {}, {"a": 1}, {"width": -4}, None]
OPTION_NAMES = ["width", "dim", "depth", "heads", "patch", "mlp_ratio", "dropout", "num_classes", "bogus"]


def _schema_paths() -> list[tuple[str, ...]]:
    paths = []

    def walk(d: dict, prefix: tuple[str, ...]) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and k != "options":
                walk(v, (*prefix, k))
            else:
                paths.append((*prefix, k))

    walk(ExperimentConfig().to_dict(), ())
    return paths


PATHS = _schema_paths()


def _set(d: dict, path: tuple[str, ...], value: object) -> None:
    node = d
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[path[-1]] = value


def mutate_config(rng: random.Random) -> dict:
    """A config dict with 1-4 hostile changes: bad values, unknown keys, wrong sections, bad options."""
    d = copy.deepcopy(ExperimentConfig().to_dict()) if rng.random() < 0.5 else {}
    sections = ["run", "data", "model", "trigger", "embed", "finetune", "extract", "restore"]
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        value = rng.choice(VALUES)
        if op < 0.45:
            _set(d, rng.choice(PATHS), value)
        elif op < 0.6:
            _set(d, (rng.choice(["model", "extract"]), "options", rng.choice(OPTION_NAMES)), value)
            if rng.random() < 0.5:
                _set(d, ("model", "arch"), rng.choice(["small_cnn", "resnet20", "resnet18", "vit", "torchvision:x"]))
        elif op < 0.7:  # a field in the wrong section
            path = rng.choice(PATHS)
            _set(d, (rng.choice(sections), path[-1]), value)
        elif op < 0.8:  # an unknown key
            _set(d, (*rng.choice(PATHS)[:-1], rng.choice(["lrr", "epoch", "", "évil", "x" * 300])), value)
        elif op < 0.9:  # a whole section replaced
            d[rng.choice(sections + ["bogus"])] = value
        else:  # a valid value just outside a bound, or a large valid one
            _set(d, rng.choice(PATHS), rng.choice([65537, 100_001, 1025, 101.0, -2, 2**31 - 1, 1e6, 1e6 + 1]))
    return d


def _toml_value(v: object) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v) if -(2**63) <= v < 2**63 else None  # TOML integers are 64-bit
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        items = [_toml_value(x) for x in v]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if isinstance(v, dict):
        items = [(k, _toml_value(x)) for k, x in v.items()]
        if any(x is None for _, x in items):
            return None
        return "{" + ", ".join(f"{json.dumps(k)} = {x}" for k, x in items) + "}"
    return None


def to_toml(d: dict) -> str:
    """Top-level scalars first, then one table per section; values TOML cannot hold are left out."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif (t := _toml_value(v)) is not None:
            lines.append(f"{json.dumps(k)} = {t}")
    for k, v in tables:
        lines.append(f"[{json.dumps(k)}]")
        lines += [f"{json.dumps(kk)} = {t}" for kk, vv in v.items() if (t := _toml_value(vv)) is not None]
    return "\n".join(lines) + "\n"


def random_override(rng: random.Random) -> str:
    key = ".".join(rng.choice(PATHS)) if rng.random() < 0.7 else rng.choice(
        ["", "=", "a..b", ".lr", "run", "model.options.width", "x y", "finetune.lr.x", "ünï.côde"])
    raw = rng.choice(["nan", "inf", "-inf", "1e308", "1e999", "-4", "1e23", "0", "3", "true", "[1,2]", "{a=1}",
                      "'str'", "\"unterminated", "[" * 50, "", "=", "0x7fffffffffffffff", "99999999999999999999"])
    return rng.choice([f"{key}={raw}", key, f"={raw}", f"{key} = {raw}"])


def _classify_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refusing the command line itself
        return f"usage error (exit {exc.code})"
    except Exception as exc:  # noqa: BLE001 - what the fuzz test looks for
        return f"FAIL {type(exc).__name__}: {exc}"
    err = capsys.readouterr().err
    if "Traceback" in err:
        return "FAIL traceback printed"
    if rc == 0:
        return "ok"
    if rc == 2 and err.startswith("wmstudio: error: "):
        return "clear error"
    return f"FAIL exit {rc}: {err[-200:]}"


def _classify_load(data: dict) -> str:
    try:
        cfg = load_config(data=data)
        check_against_data(cfg, (1, 8, 8), 10)
    except WmStudioError as exc:
        return type(exc).__name__
    except Exception as exc:  # noqa: BLE001
        return f"FAIL {type(exc).__name__}: {exc}"
    return "ok"


def _report(capsys: pytest.CaptureFixture[str], what: str, outcomes: Counter) -> None:
    with capsys.disabled():
        figures = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]))
        print(f"\n[fuzz] {what}: {sum(outcomes.values())} cases, seed {SEED}: {figures}")


def test_fuzz_config_mutations(tmp_path, capsys) -> None:
    """Mutated configs through load_config (in-process) and `wmstudio config --check` (TOML and JSON
    files, --set overrides, and byte flips of the example file)."""
    example = config_toml(ExperimentConfig(), comments=True).encode()
    outcomes: Counter = Counter()
    failures = []
    for i in range(CONFIG_CASES):
        rng = random.Random(f"{SEED}:config:{i}")
        route = ("load", "toml", "json", "set", "bytes")[i % 5]
        if route == "load":
            result = _classify_load(mutate_config(rng))
        elif route in ("toml", "json"):
            path = tmp_path / f"c.{route}"
            d = mutate_config(rng)
            path.write_text(to_toml(d) if route == "toml" else json.dumps(d), encoding="utf-8")
            result = _classify_cli(["config", "--check", str(path)], capsys)
        elif route == "set":
            path = tmp_path / "base.toml"
            path.write_bytes(example)
            argv = ["config", "--check", str(path)]
            for _ in range(rng.randint(1, 3)):
                argv.append(f"--set={random_override(rng)}")
            result = _classify_cli(argv, capsys)
        else:
            path = tmp_path / "flipped.toml"
            path.write_bytes(mutate(example, rng))
            result = _classify_cli(["config", "--check", str(path)], capsys)
        outcomes[f"{route}: {result.split(':')[0] if result.startswith('FAIL') else result}"] += 1
        if result.startswith("FAIL"):
            failures.append(f"case {i} ({route}): {result}")
    _report(capsys, "config mutations", outcomes)
    assert not failures, f"{len(failures)} of {CONFIG_CASES} config cases (seed {SEED}) did not end cleanly:\n" + \
        "\n".join(failures[:20])


# ---------------------------------------------------------------- byte flips of files

def _run_worker(kind: str, base: Path, workdir: Path, n: int) -> list[dict]:
    """All n cases in as few worker processes as possible; a crash or a hang ends one case, not the test."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    results: dict[int, dict] = {}
    _run_worker.peak_mb = 0.0  # type: ignore[attr-defined]
    start = 0
    while start < n:
        argv = [sys.executable, str(WORKER), kind, str(base), str(workdir), str(SEED), str(start), str(n - start)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env)
            out, code, err = proc.stdout, proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            code, err = "timeout", ""
        started = None
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "peak_rss_mb" in r:
                _run_worker.peak_mb = max(_run_worker.peak_mb, r["peak_rss_mb"])  # type: ignore[attr-defined]
                continue
            if r.get("start"):
                started = r["case"]
            else:
                results[r["case"]] = r
        if code == 0:
            break
        if started is None or started in results:
            raise AssertionError(f"fuzz worker for {kind} failed outside a case (exit {code}): {err[-2000:]}")
        results[started] = {"case": started, "outcome": f"crash (exit {code})", "clear": False, "message": err[-300:]}
        start = started + 1
    return [results[i] for i in sorted(results)]


def _check_files(kind: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 cases: int = FILE_CASES) -> None:
    work = tmp_path / "work"
    work.mkdir()
    results = _run_worker(kind, base, work, cases)
    outcomes = Counter(r["outcome"] + ("" if r["clear"] else " (NOT CLEAN)") for r in results)
    _report(capsys, f"byte flips of a {kind} file ({base.stat().st_size} bytes)", outcomes)
    assert len(results) == cases
    peak = _run_worker.peak_mb  # type: ignore[attr-defined]
    print(f"[fuzz] {kind}: peak memory of the worker {peak:.0f} MB")
    assert peak < PEAK_MB, f"{kind}: the fuzz worker peaked at {peak:.0f} MB (bound {PEAK_MB} MB): a crafted size was read"
    bad = [r for r in results if not r["clear"]]
    assert not bad, f"{len(bad)} of {cases} {kind} cases (seed {SEED}) did not end cleanly:\n" + "\n".join(
        f"case {r['case']}: {r['outcome']} at {r.get('where', '?')}: {r.get('message', '')}" for r in bad[:20])


@pytest.fixture(scope="module")
def small_state_dict() -> dict:
    import torch

    from wmstudio.models import build_model

    torch.manual_seed(0)
    return build_model("small_cnn", 1, 10, 8, {"width": 4}).state_dict()


def test_fuzz_state_dict_checkpoint(tmp_path, capsys, small_state_dict) -> None:
    import torch

    base = tmp_path / "base.pt"
    torch.save(small_state_dict, base)
    _check_files("pt", base, tmp_path, capsys)


def test_fuzz_safetensors_checkpoint(tmp_path, capsys, small_state_dict) -> None:
    from safetensors.torch import save_file

    base = tmp_path / "base.safetensors"
    save_file({k: v.contiguous() for k, v in small_state_dict.items()}, str(base))
    _check_files("safetensors", base, tmp_path, capsys)


def test_fuzz_run_log(tmp_path, capsys) -> None:
    from wmstudio.pipeline import run_experiment

    base = tmp_path / "base.h5"
    cfg = load_config(data={"run": {"threads": 1, "eval_batch_size": 500, "record_trajectory": False},
                            "model": {"options": {"width": 4}},
                            "data": {"flip": False, "test_size": 100},
                            "trigger": {"scheme": "abstract", "size": 10},
                            "embed": {"epochs": 1}, "finetune": {"epochs": 1}, "restore": {"epochs": 1}})
    run_experiment(cfg, base)
    _check_files("runlog", base, tmp_path, capsys)


def test_fuzz_export_metadata(tmp_path, capsys, demo_run) -> None:
    """A suspect's export with mutated metadata text: read as verify reads it."""
    from wmstudio.export_model import export_model

    base = tmp_path / "base.safetensors"
    export_model(f"{demo_run}:embed", base)
    _check_files("export", base, tmp_path, capsys, 60)


def test_fuzz_null_model_file(tmp_path, capsys) -> None:
    import numpy as np

    from wmstudio.null_models import NullDistribution

    base = tmp_path / "null.h5"
    NullDistribution(np.linspace(0.0, 0.2, 20), np.arange(20), 100, 10, "run.h5", "fuzz base").save(base)
    _check_files("nullmodels", base, tmp_path, capsys, 80)


def test_fuzz_sweep_folder(tmp_path, capsys) -> None:
    from wmstudio.sweep.records import write_json

    base = tmp_path / "sweep"
    runs = [{"run_id": f"r{i}", "values": {"finetune.lr": lr, "run.seed": s}} for i, (lr, s) in
            enumerate((lr, s) for lr in (0.01, 0.1) for s in (0, 1))]
    write_json(base / "sweep.json", {"name": "fuzz", "axes": {"finetune.lr": [0.01, 0.1], "run.seed": [0, 1]},
                                     "base": {"data": {"dataset": "digits"}, "trigger": {"size": 100}}, "runs": runs})
    for i, r in enumerate(runs):
        write_json(base / "runs" / f"{r['run_id']}.json", {
            **r, "status": "finished", "seconds": 1.0, "error": "",
            "finals": {"attacked.trigger_acc": 0.2 * i, "restore.trigger_acc": 0.3, "attacked.test_acc": 0.9,
                       "restore.test_acc": 0.9, "attacked.drift_rel": 0.1, "attacked.control_acc": 0.05,
                       "num_classes": 10, "n_trigger": 100, "n_test": 300}})
    _check_files("sweep", base, tmp_path, capsys, 60)
