"""The metric names are one table: the run log's evaluation columns are listed once (metric_names), the
writer uses that list, and every measured column has the label people read for it."""

from __future__ import annotations


def test_the_evaluation_columns_are_one_list_with_a_label_each() -> None:
    from wmstudio import runlog
    from wmstudio.metric_names import EVAL_COLUMNS, METRIC_LABELS, metric_label

    assert runlog.EVAL_COLUMNS is EVAL_COLUMNS  # the writer's columns are the table's
    measured = [c for c in EVAL_COLUMNS if c not in ("global_step", "epoch")]
    assert measured and all(c in METRIC_LABELS for c in measured), [c for c in measured if c not in METRIC_LABELS]
    assert metric_label("restore.trigger_acc") == "trigger accuracy (restored)"
