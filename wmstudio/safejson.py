"""JSON text from a file the user did not write: size and nesting depth bounded before it is parsed.

``json.loads`` recurses once per nesting level, so 200,000 nested brackets end in a RecursionError
(a traceback, not an error message); a text of gigabytes takes that much memory. ``loads`` refuses
both with one ``WmStudioError`` (the caller's class) naming where the text came from.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wmstudio.errors import WmStudioError

MAX_DEPTH = 64  # the deepest wmstudio writes is about 6 (a config's model options)
MAX_BYTES = 64 * 2**20

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub("", text)):
        if m.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(text: str | bytes, where: str, error: type[WmStudioError] = WmStudioError, max_depth: int = MAX_DEPTH,
          max_bytes: int = MAX_BYTES) -> Any:
    """``json.loads`` for untrusted text: one ``error`` naming ``where`` for bad, too large or too deep JSON."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{where}: not UTF-8 text ({exc})") from None
    if not isinstance(text, str):
        raise error(f"{where}: expected JSON text, got {type(text).__name__}")
    if len(text) > max_bytes:
        raise error(f"{where}: JSON text of {len(text):,} characters is larger than the {max_bytes:,} allowed")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise error(f"{where}: JSON nested {depth} levels deep (at most {max_depth} allowed)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{where}: not valid JSON ({str(exc)[:160]})") from None
