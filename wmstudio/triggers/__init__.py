"""Trigger-set schemes, one module each, built reproducibly from a seed."""

from __future__ import annotations

import importlib
from typing import Any

from wmstudio.errors import TriggerError
from wmstudio.triggers.base import BuildContext, TriggerSet
from wmstudio.triggers.folder import export_folder, load_folder

SCHEMES = ("abstract", "content", "noise", "unrelated", "adversarial", "folder")


def build_trigger_set(scheme: str, ctx: BuildContext, size: int, seed: int, **params: Any) -> TriggerSet:
    if scheme not in SCHEMES:
        raise TriggerError(f"trigger.scheme: unknown scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    module = importlib.import_module(f"wmstudio.triggers.{scheme}")
    return module.build(ctx, size=size, seed=seed, **params)


__all__ = ["SCHEMES", "BuildContext", "TriggerSet", "build_trigger_set", "export_folder", "load_folder"]
