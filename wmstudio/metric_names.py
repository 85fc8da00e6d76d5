"""One table of the metric and stage names a run log holds and the words people read for them.

A metric is one ``Metric`` entry of ``METRICS``: its column, its words and whether a sweep keeps it. The
run log's writer, the app's series and CSV export, the sweep's records, the CLI, the reports, the
landscape figures and the app's legends and read-outs all take theirs from here, so a metric is called
the same everywhere. Qt-free and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric, described once: its name (the run log's column), the words people read for it, and where
    it is kept. Everything below is derived from ``METRICS``."""

    name: str
    label: str  # lower case: it is used inside sentences, legends and axis titles
    short: str = ""  # the word beside a value in the app's read-outs ("": the label)
    evaluated: bool = False  # a column of every evaluation row of the run log (EVAL_COLUMNS, in this order)
    recorded: int = 0  # kept per stage in a sweep's records and reports: its place there (1 first; 0: not kept)


METRICS: tuple[Metric, ...] = (
    Metric("global_step", "global step", evaluated=True),
    Metric("epoch", "epoch", evaluated=True),
    Metric("test_loss", "test loss", evaluated=True),
    Metric("test_acc", "test accuracy", evaluated=True, recorded=1),
    Metric("trigger_loss", "trigger loss", evaluated=True),
    Metric("trigger_acc", "trigger accuracy", evaluated=True, recorded=2),
    Metric("drift_l2", "drift (L2)", "L2 distance", evaluated=True, recorded=4),
    Metric("drift_rel", "drift (relative L2)", evaluated=True, recorded=3),
    Metric("drift_cos", "cosine to reference", "cosine similarity", evaluated=True),
    Metric("p_value", "p-value", evaluated=True, recorded=5),
    # format 2 logs written from 0.x on: the watermark's control and collapse flags (absent in older logs:
    # read as "not recorded")
    Metric("control_acc", "control rate (trigger labels given without the trigger)", "control", evaluated=True,
           recorded=6),
    Metric("trigger_effect", "watermark effect (trigger accuracy - control rate)", "effect", evaluated=True,
           recorded=7),
    Metric("majority_share", "share of the most frequent test prediction", evaluated=True, recorded=8),
    Metric("collapsed", "collapsed (near chance or one class)", "collapsed", evaluated=True, recorded=9),
    # not evaluation columns: the training loss is a per-step row, the gain a difference of two stages
    Metric("train_loss", "training loss"),
    Metric("gain", "restoration gain (restored - attacked trigger accuracy)"),
)

# the columns of a stage's evaluation rows in a run log, in order (wmstudio.runlog writes them, the app's
# series and its CSV export read them)
EVAL_COLUMNS: tuple[str, ...] = tuple(m.name for m in METRICS if m.evaluated)

# each stage's values a sweep keeps in its records (wmstudio.sweep.records) and reports, in order
STAGE_COLUMNS: tuple[str, ...] = tuple(m.name for m in sorted((m for m in METRICS if m.recorded),
                                                              key=lambda m: m.recorded))

# name -> label, and name -> the read-out's word
METRIC_LABELS: dict[str, str] = {m.name: m.label for m in METRICS}
SHORT_LABELS: dict[str, str] = {m.name: m.short or m.label for m in METRICS}

# the curvature of a stage's final model (wmstudio.curvature: stored per loss, not as evaluation columns),
# "<loss>.<value>" -> label (the app's sharpness plot and its read-out)
CURVATURE_LABELS: dict[str, str] = {f"{loss}.{value}": f"{word} ({loss} loss)" for loss in ("clean", "trigger")
                                    for value, word in (("top_eigenvalue", "top eigenvalue"), ("trace", "trace"))}


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
