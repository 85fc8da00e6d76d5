"""The card written beside a trained base model (``wmstudio base-model train``): what it is, how it was
made and how well it does, read from the training's run log."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from wmstudio.base_models import (
    CARD_FORMAT,
    CARD_VERSION,
    STAGE,
    indices_hash,
    sha256_file,
    tensors_hash,
)
from wmstudio.errors import CheckpointError
from wmstudio.status import Status


def make_card(log: Path, recipe: Path, weights: Path, name: str) -> dict[str, Any]:
    """The card of a base model trained by ``recipe`` into run log ``log`` and exported to ``weights``."""
    import h5py
    import torch

    import wmstudio
    from wmstudio.config_io import config_from_json
    from wmstudio.precision import cpu_flags
    from wmstudio.runlog_reader import RunLogReader

    reader = RunLogReader(log)
    rec = reader.stage(STAGE)
    if rec.status != Status.FINISHED:
        raise CheckpointError(f"{log}: the {STAGE} stage is {rec.status}, not finished; no base model to describe")
    cfg = config_from_json(reader.config_json)
    splits = reader.splits()
    info = reader.data_info()
    with h5py.File(log, "r") as f:  # the stage's own timestamps (ISO 8601, UTC)
        attrs = f["stages"][STAGE].attrs
        started, finished = str(attrs["started"]), str(attrs["finished"])
    seconds = _seconds_between(started, finished)
    return {
        "format": CARD_FORMAT, "version": CARD_VERSION, "name": name,
        "weights": weights.name, "sha256": sha256_file(weights), "tensors_sha256": tensors_hash(weights),
        "recipe": recipe.name, "recipe_sha256": sha256_file(recipe),
        "architecture": cfg.model.arch, "options": dict(cfg.model.options),
        "dataset": {"name": str(info.get("name", "")), "root": cfg.data.root, "classes": info.get("classes", []),
                    "normalization": {"mean": info.get("mean"), "std": info.get("std")}},
        "split": {"split_seed": cfg.data.split_seed, "owner": int(len(splits["owner"])),
                  "attacker": int(len(splits["attacker"])), "test": int(len(splits["test"])),
                  "owner_sha256": indices_hash(splits["owner"]), "attacker_sha256": indices_hash(splits["attacker"]),
                  "note": "the base saw only the owner's images; the attacker's pool and the test split are unseen"},
        "test_acc": rec.final("test_acc"), "test_loss": rec.final("test_loss"),
        "epochs": int(cfg.embed.clean_epochs), "steps": int(rec.train["global_step"][-1]) if len(rec.train.get(
            "global_step", [])) else 0,
        "training": {"started": started, "finished": finished, "seconds": seconds, "precision": cfg.run.precision,
                     "threads": cfg.run.threads, "seed": cfg.run.seed, "device": "cpu",
                     "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                     "bf16_flags": sorted(f for f in cpu_flags() if "bf16" in f)},
        "versions": {"wmstudio": wmstudio.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "source_log": str(log),
    }


def _seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    try:
        return round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 1)
    except ValueError:
        return float("nan")


def write_card(path: Path, data: dict[str, Any]) -> None:
    from wmstudio.safe_files import write_text

    write_text(path, json.dumps(data, indent=2) + "\n", overwrite=True)


