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


def test_a_metric_is_one_entry_and_the_tables_are_derived_from_it() -> None:
    from wmstudio.metric_names import (
        EVAL_COLUMNS,
        METRIC_LABELS,
        METRICS,
        SHORT_LABELS,
        STAGE_COLUMNS,
    )
    from wmstudio.sweep import records

    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))  # one entry a metric
    assert EVAL_COLUMNS[:2] == ("global_step", "epoch") and set(EVAL_COLUMNS) <= set(names)
    assert records.STAGE_COLUMNS is STAGE_COLUMNS  # the sweep's records keep what the table says
    # the order the sweep's records and reports have always had
    assert STAGE_COLUMNS == ("test_acc", "trigger_acc", "drift_rel", "drift_l2", "p_value", "control_acc",
                             "trigger_effect", "majority_share", "collapsed")
    assert all(c in EVAL_COLUMNS for c in STAGE_COLUMNS)  # what a sweep keeps, every evaluation has
    assert all(METRIC_LABELS[m.name] == m.label and SHORT_LABELS[m.name] for m in METRICS)
    assert SHORT_LABELS["trigger_effect"] == "effect" and SHORT_LABELS["test_acc"] == "test accuracy"
