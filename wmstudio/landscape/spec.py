"""What to compute: one landscape's settings, validated, with clear errors naming the field."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from wmstudio.errors import ConfigError, RunLogError
from wmstudio.landscape.kinds import BUILTIN
from wmstudio.registry import Lazy, Registry


class KindFacts(Protocol):
    """What the settings and the stored landscapes read of a landscape kind. The kinds are
    ``wmstudio.landscape.kinds.base.LandscapeKind`` objects, one module each (that package's docstring
    tells how to add one); they sit above this module (they read ``LandscapeSpec``), so it loads them by
    module path."""

    help: str
    line: bool  # 1D: a path, not a grid
    centred: bool  # has a centre model (LandscapeSpec.center)
    state_directions: bool  # dir_type=states applies
    straight_segment: bool  # also evaluated on the straight segment between its ends (line_<metric>)
    resolution_why: str  # a path's resolution, in words

    def resolve(self, s: LandscapeSpec, available: list[str]) -> None: ...


def _builtin_kinds() -> Registry[KindFacts]:
    """The registry with the built-in kinds (``kinds.BUILTIN``), each under its name with its help."""
    registry: Registry[KindFacts] = Registry("landscape kind", "kind")
    for name in BUILTIN:
        kind: KindFacts = Lazy(f"wmstudio.landscape.kinds.{name}:KIND").load()
        registry.register(name, kind, help=kind.help)
    return registry


LANDSCAPE_KINDS = _builtin_kinds()

# the built-in kinds (a kind registered later, by a plug-in or a test, is in LANDSCAPE_KINDS only)
KINDS = LANDSCAPE_KINDS.names()
LINE_KINDS = tuple(k for k in KINDS if LANDSCAPE_KINDS.get(k).line)  # 1D landscapes: a path, not a grid
CENTRED_KINDS = tuple(k for k in KINDS if LANDSCAPE_KINDS.get(k).centred)  # those with a centre model
LOSSES = ("clean", "trigger")  # hessian kinds: the loss whose Hessian gives the directions
DIR_TYPES = ("weights", "states")  # random: states also moves the BatchNorm running statistics (Li et al.)
METRICS = ("test_loss", "test_acc", "trigger_loss", "trigger_acc")
LINE_METRICS = tuple(f"line_{m}" for m in METRICS)  # curve: the same metrics along the straight segment
BN_MODES = ("running", "recompute")  # keep the BatchNorm statistics, or re-estimate them at each point
PRECISIONS = ("auto", "fp32", "bf16")  # of the clean images' forward pass (the trigger set is always fp32)

# Bounds that keep one landscape within memory and time. A 2D grid evaluates resolution² points
# (each a pass over the clean and trigger images) and stores four float arrays of that size.
MAX_RESOLUTION_2D = 501
MAX_RESOLUTION_LINE = 10_001
MAX_SPAN = 1000.0
MAX_MARGIN = 100.0
MAX_WORKERS = 256


def _number(value: object, whole: bool = False) -> bool:
    if isinstance(value, bool):
        return False
    if whole:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def _opt(default: Any, help: str, *, choices: tuple[str, ...] | None = None, min: float | None = None,
         max: float | None = None, min_exclusive: bool = False, why: str = "", zero: str = "",
         line: tuple[int, int] | None = None) -> Any:
    """A setting with its help text and limits, as ``wmstudio.config.opt`` describes a config field (the
    app's landscape form is built from them, and ``check`` enforces them): ``zero``, what 0 means;
    ``line``, the (min, max) that replace ``min`` and ``max`` for a path (``LINE_KINDS``)."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive, "why": why,
            "zero": zero, "line": line}
    if isinstance(default, list):
        return field(default_factory=list, metadata=meta)
    return field(default=default, metadata=meta)


_WHY_BATCH = "a batch is held on the device at once"
_WHY_GRID = f"a 2D grid evaluates resolution² points: {MAX_RESOLUTION_2D}² is already {MAX_RESOLUTION_2D ** 2:,} model evaluations"
_KIND_HELP = ("plane: through the watermarked, fine-tuned and restored models; random: two filter-normalised random "
             "directions around one model; pca: principal directions of the recorded trajectory; line: the straight "
             "path through the checkpoints; hessian: the top two eigenvectors of the clean loss's Hessian at the last "
             "model (hessian_line: the top one); displacement: the attack (fine-tuned - watermarked) and restoration "
             "(restored - fine-tuned) displacements, centred on the fine-tuned model; curve: a connecting curve with "
             "one trained bend between the watermarked and fine-tuned models, drawn with the straight segment")
_PRECISION_HELP = ("arithmetic of the clean images' forward pass: auto takes bf16 where the processor has it and the "
                  "centre and 3 grid points agree with fp32 (losses within 1%, accuracies within 0.005), else fp32; "
                  "trigger metrics are always fp32")


@dataclass
class LandscapeSpec:
    kind: str = _opt("plane", _KIND_HELP, choices=KINDS)
    name: str = _opt("", "group name under /landscapes; default: the kind")
    # plane/line: the checkpoints; pca: the trajectories; displacement: the three stages whose
    # differences (second - first, third - second) are the axes
    models: list[str] = _opt([], "the stages the landscape is built from (default: from the kind and the log)")
    center: str = _opt("", "random/pca/hessian/hessian_line/displacement: the centre model (a stage name)")
    resolution: int = _opt(41, "points per axis (per segment for a line, along the path for hessian_line and curve)",
                           min=3, max=MAX_RESOLUTION_2D, why=_WHY_GRID, line=(2, MAX_RESOLUTION_LINE))
    span: float = _opt(1.0, "random/hessian/hessian_line: the grid covers [-span, span] in direction units",
                       min=0, max=MAX_SPAN, min_exclusive=True, why="in units of the direction's norm")
    margin: float = _opt(0.3, "plane/pca/displacement: fraction of the models' extent added on each side; "
                              "line: extension past the ends", min=0, max=MAX_MARGIN,
                         why="a fraction of the models' extent")
    seed: int = _opt(0, "random directions; hessian: Lanczos' start vector", min=0, max=2**31 - 2)
    norm: str = _opt("filter", "random: how the directions are normalised", choices=("filter", "layer", "none"))
    bias_bn: str = _opt("ignore", "random: 1-D parameters (biases, BatchNorm)", choices=("ignore", "include"))
    bn: str = _opt("running", "re-estimate BatchNorm statistics at each point (recompute) or keep them",
                   choices=BN_MODES)
    bn_batches: int = _opt(4, "batches that re-estimate the BatchNorm statistics", min=1, max=1000)
    data: str = _opt("test", "the clean set evaluated at each point (the trigger set always is)",
                     choices=("test", "owner"))
    images: int = _opt(500, "clean images evaluated per point (0 = all)", min=0, max=10**7, zero="all")
    batch_size: int = _opt(0, "images per batch (0: the fastest on this machine, measured once)", min=0, max=65536,
                           why=_WHY_BATCH, zero="fastest")
    coarse: int = _opt(11, "points per axis of the first, coarse level", min=2, max=MAX_RESOLUTION_2D)
    # auto: bf16 where the device has fast bf16 and a check at a few points agrees with fp32
    # (wmstudio.landscape.precision_check); the trigger metrics are always computed in fp32
    precision: str = _opt("auto", _PRECISION_HELP, choices=PRECISIONS)
    dir_type: str = _opt("weights", "random: weights | states (the running statistics move too, Li et al.'s rule)",
                         choices=DIR_TYPES)
    loss: str = _opt("clean", "hessian/hessian_line: clean (the clean set named by data) | trigger", choices=LOSSES)
    hessian_images: int = _opt(1000, "hessian kinds, clean loss: the first images of the clean set (0 = all)",
                               min=0, max=10**7, zero="all")
    hessian_iter: int = _opt(100, "hessian kinds: Lanczos steps at most", min=2, max=10_000,
                             why="Lanczos steps, one Hessian-vector product each")
    # curve: the quadratic Bezier curve's bend, trained on the owner's clean data (Garipov et al. 2018)
    curve_epochs: int = _opt(2, "curve: passes over the owner's data", min=1, max=10_000,
                             why="passes over the owner's data")
    curve_lr: float = _opt(0.01, "curve: SGD (momentum 0.9) learning rate; constant, then down to 1% (Garipov's "
                                 "schedule)", min=0, max=10, min_exclusive=True)
    curve_batch: int = _opt(128, "curve: the bend's training batch", min=1, max=65536, why=_WHY_BATCH)

    def __post_init__(self) -> None:
        self.models = list(self.models)

    @staticmethod
    def published(resolution: int = 41) -> LandscapeSpec:
        """The view of the research this product follows: the plane of the first two principal
        components of the fine-tuning and restoration checkpoints, centred on the restored model
        (draw its trigger-set loss, with the checkpoint path on it)."""
        return LandscapeSpec(kind="pca", name="published", models=["finetune", "restore"], center="restore",
                             resolution=resolution, margin=0.3)

    def resolved(self, available: list[str]) -> LandscapeSpec:
        """Fill defaults from the stages a log holds, and validate (the kind's own step first:
        ``KindFacts.resolve``)."""
        s = LandscapeSpec(**asdict(self))
        kind = _kind_or_error(s.kind)
        kind.resolve(s, available)
        s.name = s.name or s.kind
        for m in s.models + ([s.center] if s.center else []):
            if m not in available:
                raise ConfigError("models", f"stage {m!r} has no saved weights in this log (available: {available})")
        if kind.centred and not s.center:
            raise ConfigError("center", "no stage with saved weights to centre the landscape on")
        s.check()
        return s

    def check(self) -> None:
        """The settings that do not depend on the log: types, finite numbers and the bounds that
        protect memory and time. Called before anything is read or written."""
        s = self
        kind = _kind_or_error(s.kind)
        for f in fields(LandscapeSpec):
            if f.name == "kind":
                continue  # checked above, against the registry (its choices are the built-in kinds)
            value, expected = getattr(s, f.name), expected_text(f.name, s.kind)
            meta = f.metadata
            if meta.get("choices"):
                ok = value in meta["choices"]
            elif meta.get("min") is not None:
                lo, hi = limits(f.name, s.kind)
                whole = f.type in ("int", int)
                ok = _number(value, whole) and (lo < value if meta["min_exclusive"] else lo <= value) and value <= hi
            elif f.name == "name":
                ok = isinstance(value, str) and "/" not in value
            elif f.name == "models":
                ok = all(isinstance(m, str) for m in value)
            else:
                ok = isinstance(value, str)
            if not ok:
                raise ConfigError(f.name, f"must be {expected}, got {value!r}")
        if s.dir_type == "states" and not kind.state_directions:
            which = " or kind=".join(k for k in LANDSCAPE_KINDS if LANDSCAPE_KINDS.get(k).state_directions)
            raise ConfigError("dir_type", f"states applies to kind={which} only (the other kinds' directions are "
                                          f"not random draws), got kind={s.kind}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> LandscapeSpec:
        """The settings stored with a landscape; unreadable ones raise RunLogError."""
        from wmstudio.safejson import loads

        try:
            data = loads(text, "spec_json", RunLogError)
            known = {f.name for f in fields(LandscapeSpec)}
            if not isinstance(data, dict) or set(data) - known:
                raise ValueError(f"expected an object with the keys {sorted(known)}")
            return LandscapeSpec(**data)
        except (ValueError, TypeError, RecursionError, RunLogError) as exc:
            raise RunLogError(f"the stored landscape settings are unreadable ({exc})") from None


_FIELDS = {f.name: f for f in fields(LandscapeSpec)}


def _kind_or_error(name: object) -> KindFacts:
    """The registered kind ``name``; ConfigError naming the field ``kind`` with the known kinds."""
    if not isinstance(name, str) or name not in LANDSCAPE_KINDS:
        raise ConfigError("kind", f"must be one of {', '.join(LANDSCAPE_KINDS)}, got {name!r}")
    return LANDSCAPE_KINDS.get(name)


def _path_kind(name: str) -> KindFacts | None:
    """The kind ``name`` if it is a registered 1D kind (a path), else None."""
    kind = LANDSCAPE_KINDS.get(name) if isinstance(name, str) and name in LANDSCAPE_KINDS else None
    return kind if kind is not None and kind.line else None


def limits(name: str, kind: str = "plane") -> tuple[float, float]:
    """The lowest and highest value of the number setting ``name`` for a landscape of ``kind`` (a path's
    resolution has its own); the form's boxes and ``check`` both read them here."""
    meta = _FIELDS[name].metadata
    if meta.get("line") and _path_kind(kind):
        return meta["line"]
    return meta["min"], meta["max"]


def expected_text(name: str, kind: str = "plane") -> str:
    """What setting ``name`` must be, in words, for an error message or a tooltip ("a whole number from 3
    to 501 (a 2D grid evaluates ...)")."""
    meta = _FIELDS[name].metadata
    if meta.get("choices"):
        c = [str(x) for x in meta["choices"]]
        return ", ".join(c[:-1]) + " or " + c[-1]
    if meta.get("min") is None:
        return {"name": "a name without '/'", "models": "a list of stage names"}.get(name, "a stage name")
    lo, hi = limits(name, kind)
    why = meta["why"]
    path = _path_kind(kind)
    if name == "resolution" and path:
        why = path.resolution_why
    tail = f" ({why})" if why else ""
    if _FIELDS[name].type in ("int", int):
        zero = f" ({meta['zero']})" if meta["zero"] and lo == 0 else ""
        return f"a whole number from {lo}{zero} to {hi}{tail}"
    return f"a finite number {'>' if meta['min_exclusive'] else '>='} {lo:g} and <= {hi:g}{tail}"
