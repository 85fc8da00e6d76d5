"""The landscape kind: the base class every kind's object derives from, and what its ``create`` returns.

A kind is a singleton object (``KIND`` in its module); its class attributes are its facts, its methods
its behaviour. The defaults describe a 2D grid with nothing special; a kind overrides what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from wmstudio.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from wmstudio.control import RunControl
    from wmstudio.events import EventCallback
    from wmstudio.landscape.context import LogContext
    from wmstudio.landscape.curve import CurvePoints
    from wmstudio.landscape.directions import Plane
    from wmstudio.landscape.points import AxisPoints, GridPoints, LinePoints
    from wmstudio.landscape.spec import LandscapeSpec
    from wmstudio.landscape.store import Landscape

    PointSet = GridPoints | LinePoints | AxisPoints | CurvePoints

# the stages a run trains, in order: the default models of most kinds are those the log holds
TRAINED = ("embed", "finetune", "attack", "restore")


def trained_stages(available: list[str]) -> list[str]:
    """The trained stages among ``available`` (those with saved weights), in pipeline order."""
    return [n for n in TRAINED if n in available]


def attack_stage(available: list[str]) -> str:
    """The stage that attacked the watermark: ``attack`` in an attack-only log, else ``finetune``."""
    return "attack" if "attack" in available and "finetune" not in available else "finetune"


def too_few_stages(s: LandscapeSpec, available: list[str], need: int, words: str) -> None:
    """ConfigError unless ``s`` names at least ``need`` stages (``words``: "exactly 3", "at least 2")."""
    if len(s.models) < need:
        raise ConfigError("models", f"kind={s.kind} needs {words} stage(s) with saved weights; got {s.models} "
                                    f"(log has {available})")


@dataclass
class Created:
    """An empty landscape as a kind's ``create`` builds it: the grid's ``shape``, the ``arrays`` and
    ``attrs`` that ``store.create`` writes (after the attributes every kind records), and for a 2D kind
    the ``plane`` the stages' recorded trajectories are projected on (None: no trajectories)."""

    shape: tuple[int, ...]
    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any]
    plane: Plane | None = None


class LandscapeKind:
    """One landscape kind. Subclass it, set the facts that differ and implement ``create`` and ``points``."""

    help: str = ""  # one line, for the registry's listing (the CLI's and the app's choices)
    line: bool = False  # 1D: a path, not a grid
    centred: bool = False  # has a centre model (LandscapeSpec.center)
    state_directions: bool = False  # dir_type=states applies (the BatchNorm statistics move too)
    straight_segment: bool = False  # each point is also evaluated on the straight segment (line_<metric>)
    equal_aspect: bool = False  # 2D: both axes are distances in one unit, drawn at the same scale
    resolution_why: str = "points along the path"  # a path's resolution, in words (``line`` kinds)
    position_word: str = "distance"  # a point's place on a path, in a hover read-out (``line`` kinds)
    setup_text: str = "finding the directions"  # what a cancel during ``create`` interrupted
    ray_refusal: str = ""  # why the kind refuses Ray workers (empty: it accepts them)

    # ------------------------------------------------------------ settings

    def default_models(self, available: list[str]) -> list[str]:
        """The stages the landscape is built from when the settings name none."""
        return trained_stages(available)

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None:
        """Fill ``s``'s kind-specific defaults from the stages with saved weights, and validate them
        (ConfigError naming the field). ``LandscapeSpec.resolved`` then checks that every stage named
        exists, that a centred kind has a centre, and the bounds. The default: the default models, and
        for a centred kind the last trained stage as the centre."""
        if not s.models:
            s.models = self.default_models(available)
        if not s.center and self.centred:
            trained = trained_stages(available)
            s.center = trained[-1] if trained else ""

    # ------------------------------------------------------------ computing

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        """Build the directions and the grid of a new landscape (nothing is written: the caller stores
        what this returns). Long set-ups report through ``callback`` and can be cancelled by ``control``."""
        raise NotImplementedError

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> PointSet:
        """The point set of the stored landscape ``ls``, rebuilt from the log (``vectors()`` reads its
        stored origin and directions, or bend), so that a resume evaluates exactly the same points."""
        raise NotImplementedError

    # ------------------------------------------------------------ figures

    def axis_names(self, attrs: dict[str, Any]) -> tuple[str, str] | None:
        """A 2D landscape's axis names from its attributes, where the kind has its own (None: generic)."""
        return None

    def path_label(self, attrs: dict[str, Any]) -> str:
        """The horizontal axis' title of a path's figure."""
        return "distance along the path (parameter space)"


class CentredLineKind(LandscapeKind):
    """A path through the centre model along one unit direction, over [-span, span], the centre's BatchNorm
    statistics at every point. A subclass gives the direction (``direction``); ``create`` and ``points``
    are shared (hessian_line, and the toy kind of tests/test_landscape_kinds.py)."""

    line = True
    centred = True

    def direction(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
                  control: RunControl | None) -> tuple[Any, dict[str, Any]]:
        """The path's unit direction (a flat parameter vector, torch) and the attributes that describe it."""
        raise NotImplementedError

    def create(self, ctx: LogContext, spec: LandscapeSpec, log_path: Path, callback: EventCallback,
               control: RunControl | None) -> Created:
        import numpy as np

        from wmstudio.landscape.flat import ParamVector
        from wmstudio.landscape.stage_weights import stage_vector

        d, attrs = self.direction(ctx, spec, log_path, callback, control)
        center = stage_vector(ctx, ParamVector(ctx.model), spec.center)
        t = np.linspace(-spec.span, spec.span, spec.resolution)
        arrays = {"t": t, "model_coords": np.zeros(1), "origin": center.cpu().numpy().astype(np.float32),
                  "directions": d.reshape(1, -1).cpu().numpy().astype(np.float32)}
        return Created((len(t),), arrays, {"model_names": [spec.center], "buffers": f"fixed: {spec.center}", **attrs})

    def points(self, ctx: LogContext, ls: Landscape, vectors: Callable[[], dict[str, np.ndarray]]) -> AxisPoints:
        import torch

        from wmstudio.landscape.points import AxisPoints
        from wmstudio.landscape.stage_weights import stage_buffers

        vec, dev = vectors(), ctx.device
        return AxisPoints(torch.from_numpy(vec["origin"]).to(dev), torch.from_numpy(vec["directions"][0]).to(dev),
                          ls.axes["t"], stage_buffers(ctx, ls.spec.center))


def kind_of(name: str) -> LandscapeKind:
    """The registered kind ``name`` (ConfigError naming the field ``kind`` for an unknown one)."""
    from wmstudio.landscape.spec import LANDSCAPE_KINDS

    return cast(LandscapeKind, LANDSCAPE_KINDS.get(name))


def stored_kind(name: str) -> LandscapeKind:
    """The kind of a stored landscape; a kind this version does not know reads as a plain 2D grid."""
    from wmstudio.landscape.spec import LANDSCAPE_KINDS

    return cast(LandscapeKind, LANDSCAPE_KINDS.get(name)) if name in LANDSCAPE_KINDS else _UNKNOWN


_UNKNOWN = LandscapeKind()
