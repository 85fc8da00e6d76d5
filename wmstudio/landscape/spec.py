"""What to compute: one landscape's settings, validated, with clear errors naming the field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from wmstudio.errors import ConfigError

KINDS = ("random", "plane", "pca", "line")
METRICS = ("test_loss", "test_acc", "trigger_loss", "trigger_acc")


@dataclass
class LandscapeSpec:
    kind: str = "plane"
    name: str = ""  # group name under /landscapes; default: the kind
    models: list[str] = field(default_factory=list)  # plane/line: the checkpoints; pca: the trajectories
    center: str = ""  # random/pca: the centre model (a stage name)
    resolution: int = 41  # points per axis (2D) or per segment (line)
    span: float = 1.0  # random: the grid covers [-span, span] in direction units
    margin: float = 0.3  # plane/pca: fraction of the models' extent added on each side; line: extension past the ends
    seed: int = 0  # random directions
    norm: str = "filter"  # random: filter | layer | none
    bias_bn: str = "ignore"  # random: ignore | include (1-D parameters)
    bn: str = "running"  # running | recompute (re-estimate BatchNorm statistics at each point)
    bn_batches: int = 4
    data: str = "test"  # test | owner: the clean set evaluated at each point
    images: int = 500  # how many clean images (0 = all)
    batch_size: int = 0  # 0: the fastest on this machine, measured once
    coarse: int = 11  # points per axis of the first, coarse level

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
        trained = [n for n in ("embed", "finetune", "restore") if n in available]
        if not s.models:
            s.models = ["finetune", "restore"] if s.kind == "pca" else trained
        if not s.center and s.kind in ("random", "pca"):
            s.center = trained[-1] if trained else ""
        s.name = s.name or s.kind
        need = {"plane": 3, "line": 2, "pca": 1, "random": 0}[s.kind]
        if s.kind in ("plane", "line", "pca") and len(s.models) < need:
            raise ConfigError("models", f"kind={s.kind} needs {'exactly 3' if s.kind == 'plane' else f'at least {need}'} "
                                        f"stage(s) with saved weights; got {s.models} (log has {available})")
        if s.kind == "plane" and len(s.models) != 3:
            raise ConfigError("models", f"kind=plane needs exactly 3 stages, got {s.models}")
        for m in s.models + ([s.center] if s.center else []):
            if m not in available:
                raise ConfigError("models", f"stage {m!r} has no saved weights in this log (available: {available})")
        if s.kind in ("random", "pca") and not s.center:
            raise ConfigError("center", "no stage with saved weights to centre the landscape on")
        checks = [("resolution", s.resolution >= 3 if s.kind != "line" else s.resolution >= 2, "an integer >= 3 (2 for line)"),
                  ("span", s.span > 0, "a positive number"), ("margin", s.margin >= 0, "a number >= 0"),
                  ("norm", s.norm in ("filter", "layer", "none"), "filter, layer or none"),
                  ("bias_bn", s.bias_bn in ("ignore", "include"), "ignore or include"),
                  ("bn", s.bn in ("running", "recompute"), "running or recompute"),
                  ("bn_batches", s.bn_batches >= 1, "an integer >= 1"),
                  ("data", s.data in ("test", "owner"), "test or owner"),
                  ("images", s.images >= 0, "an integer >= 0 (0 = all)"),
                  ("batch_size", s.batch_size >= 0, "an integer >= 0 (0 = fastest)"), ("coarse", s.coarse >= 2, "an integer >= 2"),
                  ("name", "/" not in s.name, "a name without '/'")]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(name, f"must be {expected}, got {getattr(s, name)!r}")
        return s

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> LandscapeSpec:
        return LandscapeSpec(**json.loads(text))
