"""Watermark embedding methods, one module each, behind the embed stage (config: embed.method)."""

from __future__ import annotations

from collections.abc import Callable

from wmstudio.session import Session


def runner(method: str) -> Callable[[Session], dict[str, float]]:
    from wmstudio.methods import app, certified, ewe, plain, rowback

    return {"plain": plain.run, "certified": certified.run, "rowback": rowback.run, "app": app.run, "ewe": ewe.run}[method]


def run_embed(s: Session) -> dict[str, float]:
    return runner(s.cfg.embed.method)(s)
