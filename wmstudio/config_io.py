"""Reading and writing configs: TOML or JSON files, ``--set`` overrides, and the commented TOML a config
is written as (``wmstudio config --example``, the log's ``config_toml``)."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

from wmstudio.config import MAX_CONFIG_BYTES, ExperimentConfig
from wmstudio.config_check import from_dict, validate
from wmstudio.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` with value read as a TOML value (falls back to a plain string)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise ConfigError(f"--set {text!r}", "an override must look like section.key=value "
                                              "(e.g. --set finetune.lr=0.05)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, KeyError):
        value = raw.strip()
    return key, value


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``section.key`` in nested config data, creating sections on the way."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(key, f"'{part}' is a value, not a section")
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        set_path(data, *parse_override(text))
    return data


def read_config_data(path: str | Path) -> dict[str, Any]:
    """A config file's data: TOML, or JSON by its suffix. Every failure names the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", f"config file not found: {p}")
    kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"{p}: {p.stat().st_size} bytes is too large for a config file "
                                  f"(at most {MAX_CONFIG_BYTES // 2**20} MiB)")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"{p}: cannot read the config file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError("", f"{p} is not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at line {line}); "
                              f"a config is {kind} text in UTF-8") from None
    try:
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("", f"{p} is not valid {kind}: {exc}") from None
    except RecursionError:
        raise ConfigError("", f"{p} is not a usable {kind} config: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError("", f"{p}: expected a {kind} table of sections at the top, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a TOML/JSON config (or plain data), apply ``key=value`` overrides, validate."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError("config", f"expected a table of sections, got {type(data).__name__}")
    raw = dict(data) if data is not None else (read_config_data(path) if path else {})
    raw = apply_overrides(raw, overrides or [])
    try:
        return validate(from_dict(ExperimentConfig, raw))
    except ConfigError as exc:
        if path:
            raise ConfigError(exc.field, f"{exc.args[0].split(': ', 1)[-1]} (in {path})") from None
        raise


def config_from_json(text: str, working_dir: str = "") -> ExperimentConfig:
    """A config stored as JSON (a run log's); ``working_dir``: the folder its run was started in, which its
    relative data paths are read against (``anchor_paths``)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError("config", f"the stored config is not valid JSON ({exc})") from None
    return validate(from_dict(ExperimentConfig, anchor_paths(data, working_dir)))


PATH_KEYS = ("root", "cache_dir")  # the config's data paths (data.root, data.cache_dir, a DatasetSpec's root)


def anchor_paths(config: Any, working_dir: str) -> Any:
    """A stored config's relative data paths made absolute against ``working_dir``, the folder the run that
    recorded it was started in, where the path exists there: a run log opened from another folder (the app
    started elsewhere, a landscape computed later) reads the data its run read. Paths that do not exist
    there are left as written (the error then names them); absolute ones are left alone."""
    if not working_dir or not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "model":  # a model's own options are its own (a "root" there is not ours)
            value = anchor_paths(value, working_dir)
        elif key in PATH_KEYS and isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            anchored = Path(working_dir) / value
            try:
                there = anchored.exists()
            except OSError:  # a folder the log names that cannot be looked at: the path stays as written
                there = False
            if there:
                value = str(anchored)
        out[key] = value
    return out


# ---------------------------------------------------------------- writing

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _emit(obj: Any, header: str, out: list[str], comments: bool, help_text: str = "") -> None:
    scalars: list[tuple[dataclasses.Field, Any]] = []
    tables: list[tuple[dataclasses.Field, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        (tables if dataclasses.is_dataclass(value) or isinstance(value, dict) else scalars).append((f, value))
    if header:
        if out:
            out.append("")
        if comments and help_text:
            out.append(f"# {help_text}")
        out.append(f"[{header}]")
    for f, value in scalars:
        line = f"{f.name} = {_toml_value(value)}"
        if comments:
            meta = f.metadata
            extra = f" ({' | '.join(map(str, meta['choices']))})" if meta.get("choices") else ""
            line = f"{line:<32} # {meta.get('help', '')}{extra}"
        out.append(line)
    for f, value in tables:
        sub = f"{header}.{f.name}" if header else f.name
        if isinstance(value, dict):
            if out:
                out.append("")
            if comments:
                out.append(f"# {f.metadata.get('help', '')}")
            out.append(f"[{sub}]")
            out.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        else:
            _emit(value, sub, out, comments, f.metadata.get("help", ""))


def to_toml(cfg: Any, comments: bool = True) -> str:
    out: list[str] = []
    if comments:
        out += ["# Watermark Studio experiment config.",
                "# Run it: wmstudio run THIS.toml --out run.h5   (override: --set finetune.lr=0.1)"]
    _emit(cfg, "", out, comments)
    return "\n".join(out) + "\n"


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    from wmstudio.safe_files import write_text

    write_text(path, to_toml(cfg), overwrite=True)  # never through a link (the app's save dialog asks first)
