"""Landscape kinds: one module, one object per kind.

Each module ``wmstudio.landscape.kinds.<name>`` defines ``KIND``, a ``base.LandscapeKind`` holding
everything specific to that kind: its flags (``line``, ``centred``, ...), its help text, its step of
``LandscapeSpec.resolved`` (defaults and validation), its ``create`` (the directions, grid axes,
attributes and arrays of the empty landscape) and its ``points`` (the point set rebuilt from what the
log stores), and the facts the figures, the store and the evaluation read (``straight_segment``,
``equal_aspect``, ``axis_names``, ...). The generic code (``compute``, ``point_work``, ``spec``,
``store``, ``figures``) looks a kind up in ``wmstudio.landscape.spec.LANDSCAPE_KINDS`` and calls it.

Adding a kind means adding one file and one registration line:

1. write ``kinds/<name>.py`` with a subclass of ``LandscapeKind`` and ``KIND = <Subclass>()``;
2. add ``"<name>"`` to ``BUILTIN`` below (``spec`` registers each with its help text, in this order).

A kind defined elsewhere (a plug-in, a test) registers itself instead:
``LANDSCAPE_KINDS.register("<name>", obj, help=obj.help)``; ``tests/test_landscape_kinds.py`` computes
such a kind end to end.

The kind modules are read when ``spec`` is imported (for the flags and help), which must not load
PyTorch: at module level they import only ``base`` and ``wmstudio.errors``; numpy, torch and the
engine's modules are imported inside ``create`` and ``points``. ``spec`` names them by module path
(not by import) because they sit above it: they read ``LandscapeSpec``. This package's ``__init__``
imports nothing, so ``spec`` can read ``BUILTIN`` without a cycle.
"""

from __future__ import annotations

# the built-in kinds, in the order the CLI, the form and the messages list them
BUILTIN: tuple[str, ...] = ("random", "plane", "pca", "line", "hessian", "hessian_line", "displacement", "curve")
