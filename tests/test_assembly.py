"""One plan (wmstudio/assembly.py): the config-to-objects assembly is written once, and what a run
records reads back as the same split, normaliser and model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import quick_config
from wmstudio.assembly import build_model, load_split, log_model, memory_format, split_from_log
from wmstudio.config_io import load_config, to_toml
from wmstudio.control import RunControl
from wmstudio.errors import RunLogError
from wmstudio.events import ignore
from wmstudio.runlog import RunLogWriter
from wmstudio.runlog_reader import RunLogReader

PACKAGE = Path(__file__).resolve().parents[1] / "wmstudio"
# the steps of turning a config into live objects, and the modules allowed to call them: the plan, and
# the pre-flight it runs first (which builds a throw-away model to check the checkpoint against)
STEPS = {"make_splits": set(), "choose_normalizer": set(), "declared_normalization": set(), "BuildContext": set(),
         "build_trigger_set": set(), "load_pretrained": {"preflight.py"}, "build_from_config": {"preflight.py"}}


def _calls(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return out


def _assembly_calls_outside_the_plan(package: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for p in package.rglob("*.py"):
        rel = p.relative_to(package).as_posix()
        if rel == "assembly.py":
            continue
        for step in sorted(_calls(p) & set(STEPS)):
            if rel not in STEPS[step] and f"def {step}(" not in p.read_text():  # its own module may use it
                found.setdefault(rel, []).append(step)
    return found


def test_the_assembly_is_written_once() -> None:
    assert _assembly_calls_outside_the_plan(PACKAGE) == {}


def test_the_check_finds_a_second_copy(tmp_path: Path) -> None:
    (tmp_path / "assembly.py").write_text("def make_splits(): ...\n")
    (tmp_path / "copy.py").write_text("from x import make_splits\n\ndef f(cfg):\n    return make_splits(10, 2, seed=0)\n")
    assert _assembly_calls_outside_the_plan(tmp_path) == {"copy.py": ["make_splits"]}


def test_a_recorded_split_reads_back_as_the_run_drew_it(tmp_path: Path, one_thread: None) -> None:
    from wmstudio.pipeline import prepare_session

    cfg = load_config(data=quick_config(data={"normalize": "fit", "test_size": 300}))
    s = prepare_session(cfg, tmp_path / "run.h5", ignore, RunControl())
    s.recorder.close()
    fresh, back = load_split(cfg), split_from_log(cfg, RunLogReader(tmp_path / "run.h5"))
    for name in ("owner", "attacker", "test"):
        assert (getattr(back.splits, name) == getattr(fresh.splits, name)).all()
    assert (back.normalizer.mean, back.normalizer.std) == (fresh.normalizer.mean, fresh.normalizer.std)
    assert torch.equal(back.owner.images, fresh.owner.images) and torch.equal(back.test().labels, fresh.test().labels)
    assert len(back.test()) == 300 and torch.equal(back.owner.images.cpu(), s.owner.images.cpu())


def test_a_log_without_its_data_record_is_named(tmp_path: Path) -> None:
    cfg = load_config(data=quick_config())
    RunLogWriter.create(tmp_path / "cut.h5", to_toml(cfg), "{}", "cut", "cpu").close()
    with pytest.raises(RunLogError, match=r"cut\.h5: damaged or not a complete run log"):
        split_from_log(cfg, RunLogReader(tmp_path / "cut.h5"))


def test_memory_format_channels_last_only_where_it_is_safe(tmp_path: Path) -> None:
    registry = load_config(data=quick_config())
    assert memory_format(registry) == torch.channels_last
    assert memory_format(load_config(data=quick_config(run={"channels_last": False}))) == torch.contiguous_format
    net = tmp_path / "net.py"
    net.write_text("from torch import nn\n\ndef make(in_channels, num_classes, image_size):\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, num_classes))\n")
    user = load_config(data=quick_config(model={"file": str(net), "factory": "make"}))
    assert memory_format(user) == torch.contiguous_format  # a user's model may .view() its input
    assert memory_format(user, nn.Sequential(nn.Conv2d(1, 2, 3))) == torch.channels_last  # a caller that checks
    assert memory_format(user, nn.Linear(2, 2)) == torch.contiguous_format


def test_a_copied_model_is_built_with_the_extraction_architecture() -> None:
    cfg = load_config(data=quick_config(extract={"enabled": True, "arch": "resnet20"}, finetune={"enabled": False}))
    own = build_model(cfg, (1, 8, 8), 10)
    assert type(log_model(cfg, ["embed"], (1, 8, 8), 10)) is type(own)
    copy = log_model(cfg, ["embed", "extract"], (1, 8, 8), 10)
    assert type(copy) is not type(own) and copy(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
