"""One table of the metric and stage names a run log holds and the words people read for them.

The CLI, the sweep report, the landscape figures and the app all label metrics from here, so a
metric is called the same everywhere. Qt-free and torch-free.
"""

from __future__ import annotations

# the columns of a stage's evaluation rows in a run log, in order: the one list of them (wmstudio.runlog
# writes them, the app's series and its CSV export read them)
EVAL_COLUMNS = ("global_step", "epoch", "test_loss", "test_acc", "trigger_loss", "trigger_acc",
                "drift_l2", "drift_rel", "drift_cos", "p_value",
                # format 2 logs written from 0.x on: the watermark's control and collapse flags
                # (absent in older logs: read as "not recorded")
                "control_acc", "trigger_effect", "majority_share", "collapsed")

# column name -> label (lower case: it is used inside sentences, legends and axis titles)
METRIC_LABELS: dict[str, str] = {
    "test_acc": "test accuracy",
    "trigger_acc": "trigger accuracy",
    "test_loss": "test loss",
    "trigger_loss": "trigger loss",
    "train_loss": "training loss",
    "drift_l2": "drift (L2)",
    "drift_rel": "drift (relative L2)",
    "drift_cos": "cosine to reference",
    "p_value": "p-value",
    "control_acc": "control rate (trigger labels given without the trigger)",
    "trigger_effect": "watermark effect (trigger accuracy - control rate)",
    "majority_share": "share of the most frequent test prediction",
    "collapsed": "collapsed (near chance or one class)",
    "gain": "restoration gain (restored - attacked trigger accuracy)",
}

# the curvature of a stage's final model (wmstudio.curvature: stored per loss, not as evaluation columns),
# "<loss>.<value>" -> label (the app's sharpness plot and its read-out)
CURVATURE_LABELS: dict[str, str] = {f"{loss}.{value}": f"{word} ({loss} loss)" for loss in ("clean", "trigger")
                                    for value, word in (("top_eigenvalue", "top eigenvalue"), ("trace", "trace"))}

# the short words of the app's curve readouts (the value beside the cursor)
SHORT_LABELS: dict[str, str] = {
    **{k: METRIC_LABELS[k] for k in ("test_acc", "trigger_acc", "train_loss", "test_loss", "trigger_loss", "p_value")},
    "control_acc": "control", "trigger_effect": "effect", "collapsed": "collapsed",
    "drift_l2": "L2 distance", "drift_cos": "cosine similarity",
}

# the same metrics as the loss-landscape figures word them (the model evaluated on clean test images)
SURFACE_LABELS: dict[str, str] = {"test_loss": "clean loss", "test_acc": "clean accuracy",
                                  "trigger_loss": "trigger-set loss", "trigger_acc": "trigger-set accuracy"}

# stage name -> label, and the state of the model after that stage (for "trigger accuracy after ...")
STAGE_LABELS: dict[str, str] = {
    "pretrain": "clean pre-training",
    "embed": "embed",
    "finetune": "fine-tune (attack)",
    "extract": "extraction (attack)",
    "attack": "removal attack",
    "restore": "restore",
}
STAGE_RESULTS: dict[str, str] = {
    "pretrain": "clean", "embed": "watermarked", "watermarked": "watermarked", "finetune": "fine-tuned",
    "extract": "extracted", "attack": "attacked", "attacked": "attacked", "restore": "restored",
}


def metric_label(name: str) -> str:
    """``test_acc`` -> "test accuracy"; ``restore.trigger_acc`` -> "trigger accuracy (restored)";
    an unknown name comes back unchanged."""
    stage, _, metric = name.rpartition(".")
    label = METRIC_LABELS.get(metric, metric)
    return f"{label} ({STAGE_RESULTS.get(stage, stage)})" if stage else label


def stage_label(name: str) -> str:
    return STAGE_LABELS.get(name, name)
