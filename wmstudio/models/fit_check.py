"""Does a config's checkpoint fit its model, and how good is it, before anything runs (the app's checkpoint panel).

Two narrow entry points, no Qt:

- :func:`check_checkpoint` builds the model the config describes and loads ``model.checkpoint`` into
  it as a run does (:mod:`wmstudio.assembly`, through the engine's loader), reporting whether it fits
  and, if not, the loader's mismatch summary. It needs only the data set's shape and class count: for
  the named data sets these are known without decoding a single image.
- :func:`evaluate_checkpoint` assembles checkpoint, data, split, normalisation, model and trigger set
  as a run would (:func:`wmstudio.assembly.assemble`) and measures the loaded model's test and
  trigger-set accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wmstudio.config import ExperimentConfig
from wmstudio.errors import CheckpointError, WmStudioError


@dataclass(frozen=True)
class CheckResult:
    """``fits``: the checkpoint loads into the model as configured. ``details``: why not (the loader's words)."""

    checkpoint: str
    model: str  # "torchvision:resnet18", "net.py:make", ...
    fits: bool
    summary: str  # one line for a status label
    details: str = ""  # the mismatch summary when it does not fit
    notes: tuple[str, ...] = ()  # head re-initialised, non-strict warnings
    field: str = ""  # the config field at fault when the checkpoint cannot be used (model.checkpoint), else ""


@dataclass(frozen=True)
class EvalResult:
    test_acc: float
    test_loss: float
    n_test: int
    trigger_acc: float
    trigger_loss: float
    n_trigger: int
    normalization: str  # e.g. "imagenet", "declared by checkpoint x.pt", "fit"
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        return (f"test acc {self.test_acc:.3f} ({self.n_test} images), trigger acc {self.trigger_acc:.3f} "
                f"({self.n_trigger} triggers); normalisation: {self.normalization}")


def model_name(cfg: ExperimentConfig) -> str:
    m = cfg.model
    return f"{m.file}:{m.factory}" if m.file else m.arch


def check_checkpoint(cfg: ExperimentConfig) -> CheckResult:
    """Whether ``cfg.model.checkpoint`` loads into the model ``cfg`` describes (no checkpoint: trivially yes)."""
    from wmstudio.assembly import build_model, data_signature, load_weights
    from wmstudio.models.checkpoint import read_checkpoint

    m, name = cfg.model, model_name(cfg)
    if not m.checkpoint:
        return CheckResult("", name, True, f"no checkpoint: {name} starts from fresh weights")
    try:  # read first: a missing or unreadable file is said as such, whatever the model
        ckpt = read_checkpoint(m.checkpoint, m.trust_checkpoint_code)
    except CheckpointError as exc:
        return CheckResult(m.checkpoint, name, False, unusable_summary(m.checkpoint, str(exc)), str(exc),
                           field="model.checkpoint")
    try:
        c, side, k = data_signature(cfg)
        model = build_model(cfg, (c, side, side), k)
    except WmStudioError as exc:
        return CheckResult(m.checkpoint, name, False, f"the model cannot be built: {exc}", str(exc))
    try:
        loaded = load_weights(cfg, model, ckpt)
    except CheckpointError as exc:
        return CheckResult(m.checkpoint, name, False, f"does not fit {name}", str(exc), field="model.checkpoint")
    notes = tuple(loaded.messages())
    extra = f" ({len(notes)} note{'s' if len(notes) > 1 else ''})" if notes else ""
    return CheckResult(m.checkpoint, name, True, f"fits {name}{extra}", "", notes)


def unusable_summary(checkpoint: str, message: str) -> str:
    """One line for a checkpoint that cannot be read: missing, refused, or not a checkpoint (what was expected)."""
    if "no such checkpoint file" in message or "no such run log" in message:
        return f"file not found: {checkpoint}"
    if ": refused:" in message or "refused to" in message:
        return "refused: loading it would run code (details below)"
    if ": not a checkpoint:" in message:
        return ("not a checkpoint: expected weights saved by torch.save, a .safetensors file, a TorchScript "
                "archive or a run log")
    return "cannot be read as a checkpoint (details below)"


def evaluate_checkpoint(cfg: ExperimentConfig) -> EvalResult:
    """Test and trigger-set loss/accuracy of the configured model with its checkpoint, as a run's first
    evaluation would measure them (same split, normalisation and trigger set)."""
    from wmstudio.assembly import assemble, make_trigger_set
    from wmstudio.device import resolve_device
    from wmstudio.metrics.evaluate import evaluate

    device = resolve_device(cfg.run.device)
    a = assemble(cfg)
    split, model, normalizer = a.split, a.model, a.split.normalizer
    model.eval()  # on the CPU while the trigger set is made (adversarial triggers attack it)
    ts = make_trigger_set(cfg, split.owner, split.num_classes, model, normalizer)
    model.to(device).eval()
    test = split.test().to(device)
    bs = cfg.run.eval_batch_size
    test_loss, test_acc = evaluate(model, test.images, test.labels, normalizer, bs)
    trig_loss, trig_acc = evaluate(model, ts.images.to(device), ts.labels.to(device), normalizer, bs)
    how = f"declared by {normalizer.source}" if normalizer.mode == "declared" else normalizer.mode
    return EvalResult(test_acc, test_loss, len(test), trig_acc, trig_loss, len(ts.labels), how,
                      tuple(a.loaded.messages()))
