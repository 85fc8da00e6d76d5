"""The options each registry model accepts (``model.options``), with types and bounds.

Torch-free, so that ``wmstudio config --check`` validates options without loading PyTorch; the
model factories in ``wmstudio.models.registry`` run the same check before building anything.
Upper bounds keep a model's size sane (parameters grow with the square of the width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from wmstudio.errors import ConfigError


@dataclass(frozen=True)
class Option:
    kind: type  # int or float
    lo: float
    hi: float
    why: str  # the reason for the upper bound
    lo_exclusive: bool = False
    hi_exclusive: bool = False

    def expected(self) -> str:
        kind = "a whole number" if self.kind is int else "a number"
        lo = f"{'>' if self.lo_exclusive else '>='} {self.lo:g}"
        hi = f"{'<' if self.hi_exclusive else '<='} {self.hi:g}"
        return f"{kind} {lo} and {hi}"


MAX_PARAMS = 300_000_000
_WIDTH_WHY = "parameters grow with the square of the width"
_WIDTH = {"width": Option(int, 1, 1024, _WIDTH_WHY)}
_RESNET = {"width": Option(int, 1, 256, _WIDTH_WHY)}

OPTIONS: dict[str, dict[str, Option]] = {
    "small_cnn": _WIDTH,
    "resnet20": _RESNET,
    "resnet32": _RESNET,
    "resnet56": _RESNET,
    "resnet18": _RESNET,
    "vit": {
        "patch": Option(int, 1, 64, "a patch is at most the image"),
        "dim": Option(int, 1, 4096, _WIDTH_WHY),
        "depth": Option(int, 1, 64, "every layer adds dim² x 12 parameters"),
        "heads": Option(int, 1, 64, "attention heads split dim"),
        "mlp_ratio": Option(float, 0, 64, _WIDTH_WHY, lo_exclusive=True),
        "dropout": Option(float, 0, 1, "a probability", hi_exclusive=True),
    },
}


def _value(path: str, value: Any, spec: Option) -> Any:
    if spec.kind is int and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    ok_type = isinstance(value, (int, float)) if spec.kind is float else isinstance(value, int)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        raise ConfigError(path, f"expected {spec.expected()}, got {value!r}")
    too_low = value <= spec.lo if spec.lo_exclusive else value < spec.lo
    too_high = value >= spec.hi if spec.hi_exclusive else value > spec.hi
    if too_low or too_high:
        why = f" ({spec.why})" if too_high else ""
        raise ConfigError(path, f"expected {spec.expected()}{why}, got {value!r}")
    return spec.kind(value)


def check_options(arch: str, options: Any, field: str = "model.options") -> dict[str, Any]:
    """``options`` checked against ``arch``'s table: unknown names and bad values raise ConfigError
    naming ``field.<option>``. Archs outside the registry (torchvision, a user's file) pass unchecked."""
    if not isinstance(options, dict):
        raise ConfigError(field, f"expected a table of option = value, got {options!r}")
    specs = OPTIONS.get(arch)
    if specs is None:
        return dict(options)
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in specs:
            known = ", ".join(specs) or "none"
            raise ConfigError(f"{field}.{name}", f"{arch} has no option {name!r}; its options: {known}")
        out[name] = _value(f"{field}.{name}", value, specs[name])
    if arch == "vit":
        dim, heads = out.get("dim", 192), out.get("heads", 8)
        if dim % heads:
            raise ConfigError(f"{field}.heads", f"the width dim = {dim} must be a multiple of heads = {heads}")
        depth, ratio = out.get("depth", 6), out.get("mlp_ratio", 2.0)
        params = depth * dim * dim * (4 + 2 * ratio)  # attention (4 dim²) and MLP (2 ratio dim²) per layer
        if params > MAX_PARAMS:
            raise ConfigError(field, f"vit with dim = {dim}, depth = {depth}, mlp_ratio = {ratio:g} has about "
                                     f"{params / 1e6:,.0f}M parameters; at most {MAX_PARAMS / 1e6:,.0f}M (weights, "
                                     "gradients and optimiser state are held in memory at once)")
    return out
