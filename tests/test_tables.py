"""Facts written once: the stage order (wmstudio.stage_order), the status words (wmstudio.status) and the
metric labels (wmstudio.metric_names); other modules import them."""

from __future__ import annotations

import ast
from pathlib import Path

from wmstudio.metric_names import METRIC_LABELS, SHORT_LABELS
from wmstudio.stage_order import (
    AFTER_EMBED,
    ATTACK_STAGES,
    EMBED_STAGES,
    RESTORE,
    STAGES,
    STARTS_FROM,
)
from wmstudio.status import Status

PACKAGE = Path(__file__).resolve().parents[1] / "wmstudio"


def test_the_stage_order_tables_agree() -> None:
    assert (*EMBED_STAGES, *ATTACK_STAGES, RESTORE) == STAGES
    assert (*ATTACK_STAGES, RESTORE) == AFTER_EMBED
    assert STARTS_FROM == {"finetune": ("embed",), "extract": ("embed",), "attack": ("embed",),
                           "restore": ("finetune", "extract", "attack")}


def test_the_short_labels_are_the_metric_labels_where_they_share_a_word() -> None:
    assert SHORT_LABELS["trigger_acc"] == METRIC_LABELS["trigger_acc"] == "trigger accuracy"
    assert SHORT_LABELS["drift_l2"] == "L2 distance" and SHORT_LABELS["control_acc"] == "control"


def _status_literals_compared(tree: ast.AST) -> list[int]:
    words = {s.value for s in Status}

    def literal(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in words
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(literal(e) for e in node.elts)

    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Compare) and any(literal(x) for x in (n.left, *n.comparators))]


def test_no_module_compares_with_a_status_word_of_its_own() -> None:
    found = {}
    for p in PACKAGE.rglob("*.py"):
        rel = p.relative_to(PACKAGE).as_posix()
        if rel == "status.py":
            continue
        lines = _status_literals_compared(ast.parse(p.read_text()))
        if lines:
            found[rel] = lines
    assert found == {}


def test_the_finder_finds_a_status_word_compared() -> None:
    assert _status_literals_compared(ast.parse("a == 'finished'\nb in ('x', 'failed')\nc = 'running'")) == [1, 2]
