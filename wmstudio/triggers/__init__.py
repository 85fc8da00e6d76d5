"""Trigger-set schemes, one module each, built reproducibly from a seed (registry: catalog.TRIGGER_SCHEMES)."""

from __future__ import annotations

from typing import Any

from wmstudio.catalog import TRIGGER_SCHEMES
from wmstudio.errors import TriggerError
from wmstudio.triggers.base import BuildContext, TriggerSet
from wmstudio.triggers.folder import export_folder, load_folder


def build_trigger_set(scheme: str, ctx: BuildContext, size: int, seed: int, **params: Any) -> TriggerSet:
    if scheme not in TRIGGER_SCHEMES:
        raise TriggerError(f"trigger.scheme: unknown scheme {scheme!r}; known: {TRIGGER_SCHEMES.choices_text()}")
    return TRIGGER_SCHEMES.get(scheme)(ctx, size=size, seed=seed, **params)


__all__ = ["BuildContext", "TriggerSet", "build_trigger_set", "export_folder", "load_folder"]
