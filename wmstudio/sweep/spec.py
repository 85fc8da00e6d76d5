"""Sweep files: a base config and the axes to vary; the product of the axes is the run list.

```toml
[sweep]
name = "schemes x attack lr"
base = "demo"                     # a built-in example, or a config file relative to this one
[base]                            # optional: values changed in the base config
embed.epochs = 10
[axes]
"trigger.scheme" = ["content", "noise"]
"finetune.lr" = [0.005, 0.02, 0.05]
"finetune.mix_owner_fraction" = [0.0, 0.3]     # the mitigation off / on
```

An axis whose values are tables is a *case* axis: each table sets several config keys at once
(its optional ``name`` labels it in reports), for comparisons that are not a product of single
keys, e.g. attacks with their own settings:

```toml
[axes]
attack = [{ name = "ft 1e-3", "finetune.lr" = 1e-3 },
          { name = "prune 50%", "attack.kind" = "prune", "attack.sparsity" = 0.5 },
          { name = "int4", "attack.kind" = "quantize", "attack.bits" = 4 }]
"run.seed" = [0, 1, 2]
```

With ``run.seed_scope = "all"`` in the base, a ``run.seed`` axis varies the trigger set and the split
too (``trigger.seed`` and ``data.split_seed`` are derived from it; an axis over either is refused).

Runs that differ only in attack ([finetune], [extract], [attack]) or restore settings share one watermarked model: the embed
stage runs once per combination of the other axes ("embed group") and every attack starts from
its checkpoint, with the trigger set that was embedded in it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmstudio.config import ExperimentConfig
from wmstudio.config_check import from_dict, validate
from wmstudio.config_io import read_config_data, set_path, tomllib
from wmstudio.errors import ConfigError
from wmstudio.resources import example_config

ATTACK_SECTIONS = ("finetune", "extract", "attack", "restore")
DERIVED_SEEDS = ("trigger.seed", "data.split_seed")  # what run.seed_scope = "all" derives from run.seed


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and k != "options":
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def short_id(values: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def label_of(values: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items()) or "base"


@dataclass
class RunPlan:
    """One run of a sweep: its axis values, full config data, and the embed group it attacks."""

    run_id: str
    values: dict[str, Any]
    config: dict[str, Any]
    embed_id: str
    embed_values: dict[str, Any]
    error: str = ""  # the config is invalid: recorded as failed, never run

    @property
    def label(self) -> str:
        return label_of(self.values)


@dataclass
class SweepSpec:
    name: str
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    source: str = ""
    runs: list[RunPlan] = field(default_factory=list)
    decision: dict[str, Any] | None = None  # the [decision] table: the rule the report applies (sweep/decisions.py)

    def embed_groups(self) -> dict[str, RunPlan]:
        """One representative plan per embed group (its config embeds the shared watermark)."""
        groups: dict[str, RunPlan] = {}
        for r in self.runs:
            if not r.error:
                groups.setdefault(r.embed_id, r)
        return groups

    def swept(self) -> list[str]:
        return [k for k, v in self.axes.items() if len(v) > 1]

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "source": self.source, "base": self.base, "axes": self.axes,
                           **({"decision": self.decision} if self.decision else {}),
                           "runs": [{"run_id": r.run_id, "values": r.values, "embed_id": r.embed_id,
                                     "error": r.error} for r in self.runs]}, indent=1, default=str)


def _validate(data: dict[str, Any]) -> ExperimentConfig:
    return validate(from_dict(ExperimentConfig, data))


def case_settings(case: dict[str, Any]) -> dict[str, Any]:
    """The config keys (dotted) a case of a case axis sets."""
    return {k: v for k, v in _flatten(case).items() if k != "name"}


def case_name(case: dict[str, Any]) -> str:
    return str(case["name"]) if "name" in case else label_of(case_settings(case))


def expand(name: str, base: dict[str, Any], axes: dict[str, list[Any]], source: str = "") -> SweepSpec:
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"axes.{key}", "expected a non-empty list of values")
    try:
        _validate(copy.deepcopy(base))
    except ConfigError as exc:
        raise ConfigError(f"base.{exc.field}", str(exc).split(": ", 1)[-1]) from None
    cases = {k for k, v in axes.items() if all(isinstance(x, dict) for x in v)}
    for key in cases:
        names = [case_name(v) for v in axes[key]]
        if len(set(names)) < len(names):
            raise ConfigError(f"axes.{key}", f"two cases share a name ({names}); give each a distinct name")
        for v in axes[key]:
            for inner in case_settings(v):
                probe = copy.deepcopy(base)
                set_path(probe, inner, 0)
                try:
                    from_dict(ExperimentConfig, probe)
                except ConfigError as exc:
                    if exc.field == inner and "unknown key" in str(exc):
                        raise ConfigError(f"axes.{key}.{inner}", str(exc).split(": ", 1)[-1]) from None
    for key in axes:  # every axis must name a real config field
        if key in cases:
            continue
        probe = copy.deepcopy(base)
        set_path(probe, key, axes[key][0])
        try:
            from_dict(ExperimentConfig, probe)
        except ConfigError as exc:
            if exc.field == key and "unknown key" in str(exc):
                raise ConfigError(f"axes.{key}", str(exc).split(": ", 1)[-1]) from None
    spec = SweepSpec(name, base, axes, source)
    keys = list(axes)
    for combo in itertools.product(*(axes[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        data = copy.deepcopy(base)
        set_keys: dict[str, str] = {}  # config key -> the axis that set it
        for k, v in list(values.items()):
            if k in cases:
                values[k] = case_name(v)
                for kk, vv in case_settings(v).items():
                    set_path(data, kk, vv)
                    set_keys[kk] = f"{k}.{kk}"
            else:
                set_path(data, k, v)
                set_keys[k] = k
        scope = data.get("run", {}).get("seed_scope") if isinstance(data.get("run"), dict) else None
        for derived in DERIVED_SEEDS:
            if scope == "all" and derived in set_keys:
                raise ConfigError(f"axes.{set_keys[derived]}", "derived from run.seed under run.seed_scope = \"all\" "
                                  "(the axis would be replaced); sweep run.seed, or set run.seed_scope = \"model\"")
        error = ""
        try:
            _validate(copy.deepcopy(data))
        except ConfigError as exc:
            error = str(exc)
        embed_values = {k: v for k, v in values.items() if k.split(".")[0] not in ATTACK_SECTIONS}
        embed_data = {k: v for k, v in data.items() if k not in ATTACK_SECTIONS}
        spec.runs.append(RunPlan(short_id(values), values, data, short_id(embed_data), embed_values, error))
    return spec


def load_sweep(path: str | Path) -> SweepSpec:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", f"sweep file not found: {p}")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{p} is not valid TOML: {exc}") from exc
    unknown = set(raw) - {"sweep", "base", "axes", "decision"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"unknown section in {p}; expected [sweep], [base], [axes], [decision]")
    meta = raw.get("sweep", {})
    base_ref = str(meta.get("base", "demo"))
    base_path = p.parent / base_ref
    if base_path.is_file():
        base = read_config_data(base_path)
    else:
        try:
            base = read_config_data(example_config(base_ref))
        except FileNotFoundError:
            raise ConfigError("sweep.base", f"{base_ref!r} is neither a file next to {p} nor a built-in example") from None
    for k, v in _flatten(raw.get("base", {})).items():
        set_path(base, k, v)
    axes = raw.get("axes", {})
    if not axes:
        raise ConfigError("axes", f"{p}: a sweep needs at least one axis, e.g. \"finetune.lr\" = [0.01, 0.05]")
    spec = expand(str(meta.get("name", p.stem)), base, {k: list(v) if isinstance(v, list) else v for k, v in axes.items()},
                  str(p))
    if "decision" in raw:
        from wmstudio.sweep.decisions import parse_rule

        spec.decision = parse_rule(raw["decision"], list(spec.axes)).as_dict()  # checked before any run
    return spec


def _value_name(value: Any) -> str:
    """How ``--only`` names an axis value: a case by its name, any other value as TOML would print it."""
    if isinstance(value, dict):
        return case_name(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select_runs(spec: SweepSpec, only: list[str]) -> set[str] | None:
    """The ids of the runs of ``spec`` whose axis values match every ``AXIS=VALUE`` in ``only`` (one axis
    given several times: any of its values); None when ``only`` is empty (every run). The sweep itself stays
    whole, so a folder filled part by part is one sweep: its later parts resume into it and one report
    reads them all (runs not yet run show as pending)."""
    wanted: dict[str, set[str]] = {}
    for item in only:
        axis, sep, name = item.partition("=")
        axis, name = axis.strip(), name.strip().strip('"')
        if not sep or not axis or not name:
            raise ConfigError("--only", f"expected AXIS=VALUE (e.g. seed=\"seed 1\"), got {item!r}")
        if axis not in spec.axes:
            raise ConfigError("--only", f"{axis!r} is not an axis of this sweep; its axes: {', '.join(spec.axes)}")
        names = [_value_name(v) for v in spec.axes[axis]]
        if name not in names:
            raise ConfigError("--only", f"{name!r} is not a value of axis {axis!r}; its values: {', '.join(names)}")
        wanted.setdefault(axis, set()).add(name)
    if not wanted:
        return None
    return {r.run_id for r in spec.runs
            if all(_value_name(r.values.get(axis)) in names for axis, names in wanted.items())}
