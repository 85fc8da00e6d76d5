"""Files a run's config names (a checkpoint, a model's Python file, a trigger folder), sent through Ray.

On a cluster without a shared filesystem a worker cannot read the driver's paths. The driver reads
each such file (a folder as a tar archive) once and puts it in the object store once per sweep; the
worker writes it into its scratch folder under ``files/<field>/<name>`` and runs with the config
pointing there. The driver then writes the original paths back into the log where the run recorded
the scratch ones (``wmstudio.sweep.dispatch.relabel``), so a log names the same files a local run's
would. The worker is never told the driver's path: only the file's name and contents.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from wmstudio.errors import ConfigError

FIELDS = ("model.checkpoint", "model.file", "trigger.folder")  # the config fields naming a driver's file


def _split(field: str, value: str) -> tuple[str, str]:
    """(file part, suffix kept as is): a run log checkpoint ``RUN.h5:stage`` keeps its ``:stage``."""
    if field == "model.checkpoint" and (".h5:" in value or ".hdf5:" in value):
        path, _, stage = value.rpartition(":")
        return path, f":{stage}"
    return value, ""


def _get(config: dict[str, Any], field: str) -> str:
    """The driver's file a field names ("" for none, and for a shipped ``base:NAME`` model, which every
    node's wmstudio install holds and checks against its card)."""
    section, name = field.split(".")
    value = str(config.get(section, {}).get(name) or "")
    return "" if value.startswith("base:") else value


def _pack(path: Path, field: str) -> bytes:
    if path.is_dir():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", dereference=True) as tar:  # links: what they point to
            tar.add(path, arcname=".")
        return buf.getvalue()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(field, f"{path}: cannot be read to send to the workers ({exc.strerror or exc})") from exc


def collect(configs: list[dict[str, Any]]) -> dict[tuple[str, str], bytes]:
    """(field, file part of the value) -> its bytes (a folder: a tar archive), each once."""
    out: dict[tuple[str, str], bytes] = {}
    for config in configs:
        for field in FIELDS:
            value = _get(config, field)
            if not value:
                continue
            path, _ = _split(field, value)
            if (field, path) not in out:
                out[(field, path)] = _pack(Path(path).expanduser(), field)
    return out


def wanted(config: dict[str, Any], refs: dict[tuple[str, str], Any]) -> dict[str, tuple[str, bool, str, Any]]:
    """What one run needs: field -> (file name, is a folder, suffix, ObjectRef); no driver path in it."""
    out = {}
    for field in FIELDS:
        value = _get(config, field)
        if value:
            path, suffix = _split(field, value)
            p = Path(path).expanduser()
            out[field] = (p.name or "file", p.is_dir(), suffix, refs[(field, path)])
    return out


def local_path(scratch: str | Path, field: str, name: str) -> Path:
    return Path(scratch) / "files" / field / name


def relabels(scratch: str, config: dict[str, Any]) -> list[tuple[str, str]]:
    """(worker path, driver path) pairs to write back into a run's log, longest first."""
    pairs = []
    for field in FIELDS:
        value = _get(config, field)
        if value:
            path, _ = _split(field, value)
            p = Path(path).expanduser()
            pairs.append((str(local_path(scratch, field, p.name or "file")), path))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def materialise(scratch: Path, files: dict[str, tuple[str, bool, str, Any]], config: dict[str, Any],
                fetch: Any) -> dict[str, Any]:
    """Write the files into ``scratch`` and return a copy of ``config`` pointing at them."""
    import copy

    config = copy.deepcopy(config)
    for field, (name, is_dir, suffix, ref) in files.items():
        target = local_path(scratch, field, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = fetch(ref)
        if is_dir:
            target.mkdir()
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
                    tar.extractall(target, filter="data")
                else:  # the archive is the driver's own packing of the user's folder
                    tar.extractall(target)  # noqa: S202
        else:
            target.write_bytes(data)
        section, key = field.split(".")
        config.setdefault(section, {})[key] = f"{target}{suffix}"
    return config
