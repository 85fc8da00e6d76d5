"""What to compute: one landscape's settings, validated, with clear errors naming the field."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from wmstudio.errors import ConfigError, RunLogError
from wmstudio.registry import Registry


@dataclass(frozen=True)
class LandscapeKind:
    """What the rest of the engine and the app need to know of a landscape kind."""

    line: bool = False  # 1D: a path, not a grid
    centred: bool = False  # has a centre model (LandscapeSpec.center)


LANDSCAPE_KINDS: Registry[LandscapeKind] = Registry("landscape kind", "kind")
LANDSCAPE_KINDS.register("random", LandscapeKind(centred=True), help="random directions around a centre model")
LANDSCAPE_KINDS.register("plane", LandscapeKind(), help="the plane through three stages' models")
LANDSCAPE_KINDS.register("pca", LandscapeKind(centred=True), help="the trajectories' two principal components")
LANDSCAPE_KINDS.register("line", LandscapeKind(line=True), help="the straight path through the stages' models")
LANDSCAPE_KINDS.register("hessian", LandscapeKind(centred=True), help="the top two Hessian eigenvectors")
LANDSCAPE_KINDS.register("hessian_line", LandscapeKind(line=True, centred=True),
                         help="along the top Hessian eigenvector")
LANDSCAPE_KINDS.register("displacement", LandscapeKind(centred=True),
                         help="the attack's and the restoration's displacements")
LANDSCAPE_KINDS.register("curve", LandscapeKind(line=True),
                         help="a quadratic Bezier curve with one trained bend between two stages")

KINDS = LANDSCAPE_KINDS.names()
LINE_KINDS = tuple(k for k in KINDS if LANDSCAPE_KINDS.get(k).line)  # 1D landscapes: a path, not a grid
CENTRED_KINDS = tuple(k for k in KINDS if LANDSCAPE_KINDS.get(k).centred)  # those with a centre model
LOSSES = ("clean", "trigger")  # hessian kinds: the loss whose Hessian gives the directions
DIR_TYPES = ("weights", "states")  # random: states also moves the BatchNorm running statistics (Li et al.)
# displacement: the three stages' roles (the defaults' names are filled from the log)
DISPLACEMENT_ROLES = ("the watermarked model, start of the attack displacement",
                      "the attacked model, end of the attack and start of the restoration displacement",
                      "the restored model, end of the restoration displacement")
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


@dataclass
class LandscapeSpec:
    kind: str = "plane"
    name: str = ""  # group name under /landscapes; default: the kind
    # plane/line: the checkpoints; pca: the trajectories; displacement: the three stages whose
    # differences (second - first, third - second) are the axes
    models: list[str] = field(default_factory=list)
    center: str = ""  # random/pca/hessian/hessian_line/displacement: the centre model (a stage name)
    resolution: int = 41  # points per axis (2D), per segment (line) or along the path (hessian_line)
    span: float = 1.0  # random/hessian/hessian_line: the grid covers [-span, span] in direction units
    # plane/pca/displacement: fraction of the models' extent added on each side; line: extension past the ends
    margin: float = 0.3
    seed: int = 0  # random directions; hessian: Lanczos' start vector
    norm: str = "filter"  # random: filter | layer | none
    bias_bn: str = "ignore"  # random: ignore | include (1-D parameters)
    bn: str = "running"  # running | recompute (re-estimate BatchNorm statistics at each point)
    bn_batches: int = 4
    data: str = "test"  # test | owner: the clean set evaluated at each point
    images: int = 500  # how many clean images (0 = all)
    batch_size: int = 0  # 0: the fastest on this machine, measured once
    coarse: int = 11  # points per axis of the first, coarse level
    # auto: bf16 where the device has fast bf16 and a check at a few points agrees with fp32
    # (wmstudio.landscape.precision_check); the trigger metrics are always computed in fp32
    precision: str = "auto"
    dir_type: str = "weights"  # random: weights | states (the running statistics move too, Li et al.'s rule)
    loss: str = "clean"  # hessian/hessian_line: clean (the clean set named by data) | trigger
    hessian_images: int = 1000  # hessian kinds, clean loss: the first images of the clean set (0 = all)
    hessian_iter: int = 100  # hessian kinds: Lanczos steps at most
    # curve: the quadratic Bezier curve's bend, trained on the owner's clean data (Garipov et al. 2018)
    curve_epochs: int = 2  # passes over the owner's data
    curve_lr: float = 0.01  # SGD (momentum 0.9) learning rate; constant, then down to 1% (Garipov's schedule)
    curve_batch: int = 128

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
        """Fill defaults from the stages a log holds, and validate."""
        s = LandscapeSpec(**asdict(self))
        if s.kind not in KINDS:
            raise ConfigError("kind", f"must be one of {', '.join(KINDS)}, got {s.kind!r}")
        trained = [n for n in ("embed", "finetune", "attack", "restore") if n in available]
        if s.kind == "displacement":
            if not s.models:
                attack = "attack" if "attack" in available and "finetune" not in available else "finetune"
                s.models = ["embed", attack, "restore"]
            if len(s.models) != 3:
                raise ConfigError("models", f"kind=displacement needs exactly 3 stages (watermarked, attacked, "
                                            f"restored), got {s.models}")
            for m, role in zip(s.models, DISPLACEMENT_ROLES, strict=True):
                if m not in available:
                    raise ConfigError("models", f"kind=displacement needs the stage {m!r} ({role}) with saved "
                                                f"weights; this log has weights for: {', '.join(available) or 'none'}")
            s.center = s.center or s.models[1]
            if s.center not in s.models:
                raise ConfigError("center", f"kind=displacement is centred on one of its stages {s.models}, "
                                            f"got {s.center!r}")
        if s.kind == "curve":
            attack = "attack" if "attack" in available and "finetune" not in available else "finetune"
            s.models = s.models or ["embed", attack]
            if len(s.models) != 2 or s.models[0] == s.models[1]:
                raise ConfigError("models", f"kind=curve connects exactly 2 different stages (e.g. embed,finetune or "
                                            f"finetune,restore), got {s.models}")
            for m in s.models:
                if m not in available:
                    raise ConfigError("models", f"kind=curve needs the stage {m!r} with saved weights; this log has "
                                                f"weights for: {', '.join(available) or 'none'}")
            # BatchNorm statistics are always re-estimated along a curve (its points are no stage's model), and
            # the points are evaluated in fp32
            s.bn, s.precision, s.center = "recompute", "fp32", ""
        if not s.models:
            attack = "attack" if "attack" in available and "finetune" not in available else "finetune"
            s.models = [attack, "restore"] if s.kind == "pca" else trained
        if not s.center and s.kind in CENTRED_KINDS:
            s.center = trained[-1] if trained else ""
        s.name = s.name or s.kind
        need = {"plane": 3, "line": 2, "pca": 1}.get(s.kind, 0)
        if s.kind in ("plane", "line", "pca") and len(s.models) < need:
            raise ConfigError("models", f"kind={s.kind} needs {'exactly 3' if s.kind == 'plane' else f'at least {need}'} "
                                        f"stage(s) with saved weights; got {s.models} (log has {available})")
        if s.kind == "plane" and len(s.models) != 3:
            raise ConfigError("models", f"kind=plane needs exactly 3 stages, got {s.models}")
        for m in s.models + ([s.center] if s.center else []):
            if m not in available:
                raise ConfigError("models", f"stage {m!r} has no saved weights in this log (available: {available})")
        if s.kind in CENTRED_KINDS and not s.center:
            raise ConfigError("center", "no stage with saved weights to centre the landscape on")
        s.check()
        return s

    def check(self) -> None:
        """The settings that do not depend on the log: types, finite numbers and the bounds that
        protect memory and time. Called before anything is read or written."""
        s = self
        if s.kind not in KINDS:
            raise ConfigError("kind", f"must be one of {', '.join(KINDS)}, got {s.kind!r}")
        line = s.kind in LINE_KINDS
        lo, hi = (2, MAX_RESOLUTION_LINE) if line else (3, MAX_RESOLUTION_2D)
        why = ("points along the path" if s.kind in ("hessian_line", "curve") else "points per segment of the path") if line else \
            f"a 2D grid evaluates resolution² points: {hi}² is already {hi * hi:,} model evaluations"
        checks = [("resolution", _number(s.resolution, True) and lo <= s.resolution <= hi,
                   f"a whole number from {lo} to {hi} ({why})"),
                  ("span", _number(s.span) and 0 < s.span <= MAX_SPAN,
                   f"a finite number > 0 and <= {MAX_SPAN:g} (in units of the direction's norm)"),
                  ("margin", _number(s.margin) and 0 <= s.margin <= MAX_MARGIN,
                   f"a finite number >= 0 and <= {MAX_MARGIN:g} (a fraction of the models' extent)"),
                  ("seed", _number(s.seed, True) and 0 <= s.seed < 2**31 - 1, "a whole number >= 0 and < 2147483647"),
                  ("norm", s.norm in ("filter", "layer", "none"), "filter, layer or none"),
                  ("bias_bn", s.bias_bn in ("ignore", "include"), "ignore or include"),
                  ("bn", s.bn in BN_MODES, " or ".join(BN_MODES)),
                  ("bn_batches", _number(s.bn_batches, True) and 1 <= s.bn_batches <= 1000, "a whole number from 1 to 1000"),
                  ("data", s.data in ("test", "owner"), "test or owner"),
                  ("images", _number(s.images, True) and 0 <= s.images <= 10**7, "a whole number from 0 (all) to 10000000"),
                  ("batch_size", _number(s.batch_size, True) and 0 <= s.batch_size <= 65536,
                   "a whole number from 0 (fastest) to 65536 (a batch is held on the device at once)"),
                  ("coarse", _number(s.coarse, True) and 2 <= s.coarse <= MAX_RESOLUTION_2D,
                   f"a whole number from 2 to {MAX_RESOLUTION_2D}"),
                  ("precision", s.precision in PRECISIONS, ", ".join(PRECISIONS[:-1]) + " or " + PRECISIONS[-1]),
                  ("name", isinstance(s.name, str) and "/" not in s.name, "a name without '/'"),
                  ("center", isinstance(s.center, str), "a stage name"),
                  ("models", all(isinstance(m, str) for m in s.models), "a list of stage names"),
                  ("dir_type", s.dir_type in DIR_TYPES, " or ".join(DIR_TYPES)),
                  ("loss", s.loss in LOSSES, " or ".join(LOSSES)),
                  ("hessian_images", _number(s.hessian_images, True) and 0 <= s.hessian_images <= 10**7,
                   "a whole number from 0 (all) to 10000000"),
                  ("hessian_iter", _number(s.hessian_iter, True) and 2 <= s.hessian_iter <= 10_000,
                   "a whole number from 2 to 10000 (Lanczos steps, one Hessian-vector product each)"),
                  ("curve_epochs", _number(s.curve_epochs, True) and 1 <= s.curve_epochs <= 10_000,
                   "a whole number from 1 to 10000 (passes over the owner's data)"),
                  ("curve_lr", _number(s.curve_lr) and 0 < s.curve_lr <= 10, "a finite number > 0 and <= 10"),
                  ("curve_batch", _number(s.curve_batch, True) and 1 <= s.curve_batch <= 65536,
                   "a whole number from 1 to 65536 (a batch is held on the device at once)")]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(name, f"must be {expected}, got {getattr(s, name)!r}")
        if s.dir_type == "states" and s.kind != "random":
            raise ConfigError("dir_type", f"states applies to kind=random only (the other kinds' directions are "
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
