"""Watermark embedding methods, one module each, behind the embed stage (config: embed.method;
registry: catalog.METHODS)."""

from __future__ import annotations

from wmstudio.catalog import METHODS
from wmstudio.session import Session


def run_embed(s: Session) -> dict[str, float]:
    return METHODS.get(s.cfg.embed.method)(s)
