"""Landscape kinds are objects (wmstudio.landscape.kinds): a kind defined and registered here, outside the
package, computes end to end through the public landscape API with no other file edited; the generic
landscape modules hold no comparison of a kind's name; the kind modules load without PyTorch."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from wmstudio.control import RunControl
from wmstudio.errors import ConfigError
from wmstudio.events import EventCallback, LandscapeFinished, LandscapePoints, LandscapeStarted
from wmstudio.landscape import LandscapeSpec, compute_landscape, read
from wmstudio.landscape.context import LogContext, load_context
from wmstudio.landscape.flat import ParamVector
from wmstudio.landscape.kinds import BUILTIN
from wmstudio.landscape.kinds.base import CentredLineKind
from wmstudio.landscape.point_work import points_from_store
from wmstudio.landscape.points import AxisPoints
from wmstudio.landscape.spec import LANDSCAPE_KINDS
from wmstudio.landscape.stage_weights import stage_vector

PACKAGE = Path(__file__).resolve().parents[1] / "wmstudio" / "landscape"
GENERIC = ("compute.py", "point_work.py", "spec.py", "figures.py", "store.py")


class ToyLineKind(CentredLineKind):
    """The line through the centre model along one fixed random unit direction (seeded by ``seed``)."""

    help = "a toy: the line through the centre model along one seeded random direction"

    def direction(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
                  control: RunControl | None) -> tuple[torch.Tensor, dict]:
        d = torch.randn(ParamVector(ctx.model).numel, generator=torch.Generator().manual_seed(spec.seed))
        return d / d.norm(), {"axis_units": "toy direction units"}


@pytest.fixture()
def toy_kind() -> Iterator[ToyLineKind]:
    kind = ToyLineKind()
    LANDSCAPE_KINDS.register("toy_line", kind, help=kind.help)  # the one registration line
    yield kind
    LANDSCAPE_KINDS.unregister("toy_line")


def test_a_kind_registered_outside_the_package_computes_end_to_end(demo_copy, toy_kind, tmp_path) -> None:
    from wmstudio.landscape.figures import export_figure

    events: list = []
    spec = LandscapeSpec(kind="toy_line", resolution=5, span=0.5, images=64, precision="fp32", coarse=2, seed=3)
    ls = compute_landscape(demo_copy, spec, events.append)
    assert ls.status == "finished" and ls.complete and ls.kind == "toy_line" and not ls.is_2d
    assert ls.spec.center == "restore" and ls.model_names == ["restore"]  # the base resolve: the last stage
    assert ls.attrs["axis_units"] == "toy direction units" and ls.attrs["data"] == "test"  # kind's and generic
    assert ls.axes["t"] == pytest.approx(np.linspace(-0.5, 0.5, 5))
    for m in ("test_loss", "trigger_loss"):
        assert np.isfinite(ls.metrics[m]).all()
    assert ((ls.metrics["test_acc"] >= 0) & (ls.metrics["test_acc"] <= 1)).all()
    assert isinstance(events[0], LandscapeStarted) and events[0].kind == "toy_line"
    assert sum(len(e.indices) for e in events if isinstance(e, LandscapePoints)) == 5
    assert isinstance(events[-1], LandscapeFinished) and events[-1].status == "finished"
    # the points are the kind's: the middle one is the centre model
    ctx = load_context(demo_copy)
    points = points_from_store(ctx, demo_copy, "toy_line")
    assert isinstance(points, AxisPoints)
    centre = stage_vector(ctx, ParamVector(ctx.model), "restore")
    assert torch.allclose(points.params(2, torch.empty_like(centre)), centre)
    # stored and read back like any landscape; a second compute finds it finished; its figure draws
    assert read(demo_copy, "toy_line").metrics["test_loss"] == pytest.approx(ls.metrics["test_loss"])
    again: list = []
    compute_landscape(demo_copy, spec, again.append)
    assert [type(e) for e in again] == [LandscapeFinished] and again[0].message == "already computed"
    assert export_figure(ls, "test_loss", tmp_path / "toy.png").stat().st_size > 0


def test_a_registered_kind_is_validated_like_the_built_in_ones(toy_kind) -> None:
    with pytest.raises(ConfigError, match="^center: no stage with saved weights to centre"):
        LandscapeSpec(kind="toy_line").resolved([])
    with pytest.raises(ConfigError, match="^resolution: must be a whole number from 2 to 10001 \\(points along"):
        LandscapeSpec(kind="toy_line", resolution=1).check()
    with pytest.raises(ConfigError, match="^dir_type: states applies to kind=random only"):
        LandscapeSpec(kind="toy_line", dir_type="states").check()
    assert LandscapeSpec(kind="toy_line").resolved(["embed", "finetune"]).center == "finetune"


def test_an_unregistered_kind_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="^kind: must be one of random, plane, pca, line, hessian, hessian_line, "
                                          "displacement, curve, got 'toy_line'"):
        LandscapeSpec(kind="toy_line").check()


def _name_comparisons(source: str) -> list[str]:
    """Comparisons of a kind (a name or attribute called ``kind``) with == / != / in / not in against
    text or a tuple/list/set of texts: an if-chain on the kind's name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        kinds = [o for o in operands if (isinstance(o, ast.Name) and o.id == "kind")
                 or (isinstance(o, ast.Attribute) and o.attr == "kind")]

        def text(o: ast.expr) -> bool:
            if isinstance(o, ast.Constant):
                return isinstance(o.value, str)
            return isinstance(o, (ast.Tuple, ast.List, ast.Set)) and all(text(e) for e in o.elts)

        if kinds and any(text(o) for o in operands) and all(
                isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
            found.append(ast.unparse(node))
    return found


def test_the_generic_landscape_modules_compare_no_kind_names() -> None:
    found = {f: _name_comparisons((PACKAGE / f).read_text()) for f in GENERIC}
    assert {f: c for f, c in found.items() if c} == {}


def test_the_landscape_panels_compare_no_kind_names() -> None:
    """The app's landscape panels ask the kind object (equal_aspect, path_label, position_word), not its name."""
    gui = PACKAGE.parent / "gui"
    found = {p.name: _name_comparisons(p.read_text()) for p in sorted(gui.glob("landscape*.py"))}
    assert len(found) >= 5 and {f: c for f, c in found.items() if c} == {}


def test_the_comparison_finder_finds_kind_chains() -> None:
    source = ("if spec.kind == 'curve': pass\nx = 1 if ls.kind in ('plane', 'pca') else 2\n"
              "if kind != 'random': pass\nif spec.kind == other: pass\nif mode == 'curve': pass\n")
    assert sorted(_name_comparisons(source)) == ["kind != 'random'", "ls.kind in ('plane', 'pca')", "spec.kind == 'curve'"]


def test_the_kind_modules_import_only_the_base_and_errors_at_module_level() -> None:
    """``spec`` loads every built-in kind's module when imported; the heavy imports are in the methods."""
    allowed = {"__future__", "collections.abc", "typing", "dataclasses", "wmstudio.errors",
               "wmstudio.landscape.kinds.base"}
    for name in BUILTIN + ("base",):
        tree = ast.parse((PACKAGE / "kinds" / f"{name}.py").read_text())
        top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        top |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert top <= allowed, (name, top - allowed)


def test_the_spec_and_its_kinds_load_without_torch() -> None:
    code = ("import sys, wmstudio.landscape.spec as s; s.LandscapeSpec(kind='curve').resolved(['embed', 'finetune']); "
            "print(sorted(m for m in ('torch', 'numpy', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
