"""Checking a config: raw data to typed sections (``from_dict``, every error naming its field), the
cross-field rules (``validate``) and the checks against the data a run loads (``check_against_data``)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import typing
from typing import Any

from wmstudio import catalog
from wmstudio.config import MAX_FLOAT, MAX_INT, WHY_FLOAT, DataSection, ExperimentConfig
from wmstudio.errors import ConfigError

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - exercised on Python 3.10 only
    pass


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_number(path: str, value: Any, tp: type) -> Any:
    """Whole numbers (an integral float such as ``3.0`` counts) and finite numbers; bools are not numbers."""
    if tp is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) <= MAX_INT:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected a whole number, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"expected a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        raise ConfigError(path, f"expected a finite number, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(path, f"expected a finite number, got {value!r}")
    return value


def _check_value(path: str, value: Any, tp: Any, meta: dict[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}")
    elif tp in (int, float):
        value = _check_number(path, value, tp)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {value!r}")
    elif typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table of key = value, got {value!r}")
        return dict(value)
    elif typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp) or (str,)
        if item is float:  # numbers; the app's form hands list elements over as text
            if not isinstance(value, list):
                raise ConfigError(path, f"expected a list of numbers, got {value!r}")
            return [_check_number(path, _number(path, v), float) for v in value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(path, f"expected a list of strings, got {value!r}")
        return list(value)
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(path, f"expected one of {', '.join(map(str, choices))}; got {value!r}")
    if tp not in (int, float):
        return value
    lo, hi, why = meta.get("min"), meta.get("max"), meta.get("why") or ""
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        op = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(path, f"expected a number {op} {lo}, got {value!r}")
    if hi is None:
        hi, why = (MAX_INT, "larger whole numbers are not meaningful here") if tp is int else (MAX_FLOAT, WHY_FLOAT)
    if value > hi:
        kind, bound = ("a whole number", str(hi)) if tp is int else ("a number", f"{hi:g}")
        raise ConfigError(path, f"expected {kind} <= {bound}{f' ({why})' if why else ''}, got {value!r}")
    return value


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key, type and range."""
    if not isinstance(data, dict):
        raise ConfigError(path or "config", f"expected a table, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"{path}.{key}" if path else key, f"unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        sub = f"{path}.{name}" if path else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, data[name], sub)
        else:
            kwargs[name] = _check_value(sub, data[name], tp, dict(f.metadata))
    return cls(**kwargs)


def derived_seeds(run_seed: int) -> tuple[int, int]:
    """(trigger.seed, data.split_seed) that run.seed_scope = "all" derives from ``run_seed``: run seed 0 gives the
    defaults (1, 0), so a sweep over run seeds 0, 1, 2 starts from the single run's trigger set and split."""
    return run_seed + 1, run_seed


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Cross-field checks that a single field cannot express, and the seeds run.seed_scope = "all" derives
    (written into the config itself, so the log's config records the seeds the run used)."""
    if cfg.run.seed_scope == "all":
        if cfg.run.seed >= MAX_INT:
            raise ConfigError("run.seed", f"expected a whole number < {MAX_INT} with seed_scope = \"all\" "
                                          f"(trigger.seed = run.seed + 1), got {cfg.run.seed}")
        cfg.trigger.seed, cfg.data.split_seed = derived_seeds(cfg.run.seed)
    if cfg.model.checkpoint.startswith("base:"):  # a shipped base model: its file, checked against its card
        from wmstudio.base_models import resolve

        cfg.model.checkpoint = str(resolve(cfg.model.checkpoint))
    if cfg.trigger.scheme == "adversarial" and cfg.embed.enabled and not cfg.model.checkpoint \
            and cfg.embed.clean_epochs == 0:
        raise ConfigError("embed.clean_epochs", "adversarial triggers are made against a trained clean "
                          "model: set embed.clean_epochs > 0 or give model.checkpoint")
    if cfg.trigger.scheme == "folder" and not cfg.trigger.folder:
        raise ConfigError("trigger.folder", "the folder scheme needs a folder of images")
    if cfg.model.file and not cfg.model.factory:
        raise ConfigError("model.factory", "model.file is set: name the function or class that builds the model")
    if cfg.extract.enabled and cfg.finetune.enabled:
        raise ConfigError("extract.enabled", "one attack per run: disable finetune (finetune.enabled = false) "
                                             "to run model extraction")
    if cfg.extract.enabled and cfg.attack.kind != "finetune":
        raise ConfigError("attack.kind", f"one attack per run: {cfg.attack.kind!r} replaces the attack stage; "
                                         "disable extract (extract.enabled = false)")
    if catalog.DATASETS.get(cfg.data.dataset).needs_root and not cfg.data.root:
        raise ConfigError("data.root", f"the {cfg.data.dataset} data set needs a folder or archive path")
    _check_normalization(cfg.data)
    from wmstudio.model_options import check_options  # the registry models' own option tables

    if not cfg.model.file:
        check_options(cfg.model.arch, cfg.model.options, "model.options")
    if cfg.extract.arch:
        check_options(cfg.extract.arch, cfg.extract.options, "extract.options")
    return cfg


def check_against_data(cfg: ExperimentConfig, shape: tuple[int, int, int], num_classes: int,
                       budget: int | None = None) -> None:
    """Checks that need the data set: the memory a batch and the trigger set take at its image shape
    (as floats on the device), and class indices. Run before anything is written."""
    from wmstudio.memory import gib, memory_budget

    budget = budget or memory_budget()
    c, h, w = shape
    per_image = 4 * c * h * w
    sizes = [("run.eval_batch_size", cfg.run.eval_batch_size), ("trigger.size", cfg.trigger.size)]
    sizes += [(f"{name}.batch_size", getattr(cfg, name).batch_size) for name in ("embed", "finetune", "extract", "restore")
              if getattr(cfg, name).enabled]
    for path, n in sizes:
        if n * per_image > budget:
            raise ConfigError(path, f"{n} images of {c}x{h}x{w} take {gib(n * per_image)} as floats on the device, "
                                    f"more than the {gib(budget)} allowed (half of this machine's memory)")
    if cfg.embed.method == "ewe" and cfg.embed.ewe_target_class >= num_classes:
        raise ConfigError("embed.ewe_target_class", f"{cfg.embed.ewe_target_class} is not a class of this data set "
                                                    f"(0..{num_classes - 1}, or -1)")


def _number(path: str, v: Any) -> float:
    """A list element as a float (the app's form hands list elements over as text)."""
    try:
        if isinstance(v, bool):
            raise ValueError
        return float(v)
    except (TypeError, ValueError):
        raise ConfigError(path, f"expected numbers, got {v!r}") from None


def _check_normalization(d: DataSection) -> None:
    """data.channels in 0/1/3; data.mean / data.std: numbers, as many of each, std > 0, only with normalize = custom."""
    if d.channels not in (0, 1, 3):
        raise ConfigError("data.channels", f"expected 0 (keep), 1 or 3, got {d.channels}")
    if d.normalize != "custom":
        for name in ("mean", "std"):
            if getattr(d, name):
                raise ConfigError(f"data.{name}", f"only used with data.normalize = \"custom\" (it is {d.normalize!r})")
        return
    for name in ("mean", "std"):
        values = getattr(d, name)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"data.{name}", "normalize = \"custom\" needs a list of per-channel values, "
                              "e.g. [0.485, 0.456, 0.406]")
        setattr(d, name, [_number(f"data.{name}", v) for v in values])
    if len(d.mean) != len(d.std):
        raise ConfigError("data.std", f"{len(d.std)} values but data.mean has {len(d.mean)}: give one per channel")
    if any(v <= 0 for v in d.std):
        raise ConfigError("data.std", f"every value must be > 0, got {d.std}")
