"""Running an experiment: data, model, trigger set, then pretrain -> embed -> fine-tune -> restore."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wmstudio.assembly import assemble, make_trigger_set, memory_format
from wmstudio.attacks import run_attack
from wmstudio.config import ExperimentConfig
from wmstudio.config_io import to_toml
from wmstudio.control import RunControl
from wmstudio.data.batches import Augment
from wmstudio.device import describe, resolve_device, use_threads
from wmstudio.errors import Cancelled, ConfigError, RunLogError
from wmstudio.events import (
    DataRecorded,
    Error,
    EventCallback,
    ModelRecorded,
    RunFinished,
    RunStarted,
    StageFinished,
    TriggerSetRecorded,
    Warning,
    ignore,
)
from wmstudio.methods import run_embed
from wmstudio.preflight import model_record
from wmstudio.run_recorder import RunRecorder
from wmstudio.runlog import refuse_existing
from wmstudio.runlog_reader import checkpoint_warnings
from wmstudio.session import Session
from wmstudio.stage_order import AFTER_EMBED, STAGES, STARTS_FROM
from wmstudio.stages.embed import run_pretrain
from wmstudio.stages.extract import run_extract
from wmstudio.stages.finetune import run_finetune
from wmstudio.stages.restore import run_restore
from wmstudio.status import Status
from wmstudio.triggers import TriggerSet
from wmstudio.triggers.control import attach_control

_RUNNERS = {"pretrain": run_pretrain, "embed": run_embed, "finetune": run_finetune, "extract": run_extract,
            "attack": run_attack, "restore": run_restore}


@dataclass
class RunResult:
    log_path: Path
    status: Status  # FINISHED | CANCELLED | FAILED
    message: str = ""


def planned_stages(cfg: ExperimentConfig, only: Sequence[str] | None = None) -> list[str]:
    plan = []
    if cfg.embed.enabled and cfg.embed.clean_epochs > 0:
        plan.append("pretrain")
    for name in ("embed", "finetune", "extract", "restore"):
        if name == "finetune" and cfg.attack.kind != "finetune":
            plan.append("attack")  # [attack] kind replaces fine-tuning
        elif getattr(cfg, name).enabled:
            plan.append(name)
    if only:
        unknown = [n for n in only if n not in STAGES]
        if unknown:
            raise ConfigError("stages", f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
        plan = [n for n in plan if n in only]
    return plan


def chained_checkpoint(plan: Sequence[str], log: str | Path, logged: Sequence[str]) -> str | None:
    """``LOG:STAGE`` a run of ``plan`` starts from when it continues the run in ``log`` (whose stages,
    in run order, are ``logged``): the latest logged stage its first stage follows, else None."""
    if not plan:
        return None
    sources = STARTS_FROM.get(plan[0], ())
    for name in reversed(list(logged)):
        if name in sources:
            return f"{log}:{name}"
    return None


def _use_triggers(s: Session, ts: TriggerSet) -> None:
    attach_control(ts, s.test)  # a matched control where the scheme has no paired one (triggers/control.py)
    s.set_trigger(ts)
    control = ts.control_images.numpy() if ts.control_images is not None else None
    s.emit(TriggerSetRecorded(ts.scheme, ts.images.numpy(), ts.labels.numpy(), tuple(s.data.train.classes or ()),
                              ts.source_labels.numpy(), ts.seed, ts.params, control, ts.control_kind))


def build_triggers(s: Session) -> None:
    _use_triggers(s, make_trigger_set(s.cfg, s.owner.to("cpu"), s.num_classes, s.model, s.normalizer, s.device))


def triggers_from_log(s: Session, path: str | Path) -> None:
    """Use the trigger set stored in an earlier run's log (an attack on that run's watermarked model)."""
    from wmstudio.runlog_reader import RunLogReader

    ts = RunLogReader(path).trigger_set()
    ts.params = {**ts.params, "from_log": str(path)}
    _use_triggers(s, ts)


def prepare_session(cfg: ExperimentConfig, out: str | Path, callback: EventCallback, control: RunControl,
                    overwrite: bool = False, stages: Sequence[str] = ()) -> Session:
    """Load data and model, split, and start the log. Config and data errors surface before any file is written.

    The session's recorder holds the writer lock on ``out`` until ``s.recorder.close()``; an existing
    ``out`` is refused unless ``overwrite``. ``stages``: the plan ``RunStarted`` announces.
    """
    refuse_existing(out, overwrite)  # before the (possibly slow) data loading
    device = resolve_device(cfg.run.device)
    use_threads(cfg.run.threads)  # 0: the process's default, never what an earlier run of the app set
    torch.manual_seed(cfg.run.seed)
    d = cfg.data
    a = assemble(cfg, d.download)  # refused or unfitting checkpoints fail before any data is decoded
    split, model, loaded = a.split, a.model, a.loaded
    data, normalizer = split.data, split.normalizer
    if cfg.model.checkpoint:
        loaded.warnings += checkpoint_warnings(cfg.model.checkpoint)  # partial weights of a cancelled stage
    model.to(device)
    fmt = memory_format(cfg)
    model.to(memory_format=fmt)
    h = data.shape[1]
    padding = d.crop_padding if d.crop_padding >= 0 else max(1, h // 8)
    augment = Augment(padding, d.flip) if d.augment else None
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.run.seed)
    recorder = RunRecorder(out, describe(device), overwrite)
    s = Session(cfg, device, model, data, split.owner.to(device), split.attacker().to(device),
                split.test().to(device), normalizer, augment, recorder, callback, control, gen, memory_format=fmt)
    s.emit(RunStarted(str(out), describe(device), tuple(stages), cfg.to_dict(), to_toml(cfg), cfg.run.name))
    try:
        s.emit(DataRecorded({"dataset": d.dataset, "root": d.root, "working_dir": os.getcwd(), "name": data.name,
                             "num_classes": data.num_classes, "shape": list(data.shape),
                             "classes": data.train.classes, "mean": list(normalizer.mean),
                             "std": list(normalizer.std), "normalize": normalizer.mode,
                             "normalize_source": normalizer.source,
                             "head": loaded.head.message() if loaded.head else "", "split_seed": d.split_seed,
                             "warnings": data.warnings},
                            {k: np.asarray(v, dtype=np.int64) for k, v in split.splits.as_dict().items()}))
        s.emit(ModelRecorded(model_record(cfg, a.checkpoint)))
    except BaseException as exc:
        _mark_failed(s, f"{type(exc).__name__}: {exc}")
        recorder.close()
        raise
    for w in data.warnings + loaded.messages():
        s.emit(Warning(w))
    s.snapshot("initial")
    return s


def _mark_failed(s: Session, message: str, stage: str = "") -> None:
    """Record a failure in the log where that can still be written (not after the disk filled up)."""
    if stage:
        s.emit(StageFinished(stage, Status.FAILED, message=message), best_effort=True)
    s.emit(Error(message, stage))
    s.emit(RunFinished(str(s.recorder.path), Status.FAILED, message), best_effort=True)


def run_experiment(cfg: ExperimentConfig, out: str | Path, callback: EventCallback = ignore,
                   control: RunControl | None = None, stages: Sequence[str] | None = None,
                   trigger_from: str | Path | None = None, overwrite: bool = False) -> RunResult:
    """Run the configured stages, writing everything to the HDF5 log at ``out``.

    ``trigger_from``: take the trigger set from this earlier run log instead of building it (a
    sweep's attacks on a shared watermarked model use the triggers that were embedded in it).
    ``overwrite``: replace an existing ``out`` (otherwise it is refused with a ``RunLogError``,
    so a caller such as the app can ask first). The log is locked against a second writer while
    the run goes on; it is written by the session's recorder from the events the stages emit.

    Returns the result for a finished or cancelled run; re-raises errors after recording them in the
    log (a write failure, such as a full disk, ends the run with a ``RunLogError``).
    """
    control = control or RunControl()
    plan = planned_stages(cfg, stages)
    try:
        s = prepare_session(cfg, out, callback, control, overwrite, plan)
    except Cancelled:  # while the model or the data were being loaded (e.g. a model file's slow import)
        return RunResult(Path(out), Status.CANCELLED, "cancelled by the user before the run's log was started")
    current = ""
    try:
        if trigger_from:
            triggers_from_log(s, trigger_from)
        elif cfg.trigger.scheme != "adversarial" or "pretrain" not in plan:
            build_triggers(s)  # before pretraining, so its rows show the trigger accuracy of a clean model
        for name in plan:
            if name == "embed" and s.trigger is None:
                build_triggers(s)  # adversarial: against the model pre-training produced
            if name in AFTER_EMBED and "watermarked" not in s.references:
                # fine-tuning a loaded, already watermarked model: the stage measures drift from its own start
                s.snapshot("watermarked", recorded_as=f"{name}_start")
            current = name
            s.begin_stage_randomness(name)
            _RUNNERS[name](s)
            current = ""
            if name == "embed":
                s.snapshot("watermarked")
        s.emit(RunFinished(str(out), Status.FINISHED))
        return RunResult(Path(out), Status.FINISHED)
    except Cancelled:
        s.emit(RunFinished(str(out), Status.CANCELLED, "cancelled by the user"))
        return RunResult(Path(out), Status.CANCELLED, "cancelled by the user")
    except Exception as exc:
        message = str(exc) if isinstance(exc, RunLogError) else f"{type(exc).__name__}: {exc}"
        # a stage stopped by its own error has marked itself; one stopped by a failed write has not
        _mark_failed(s, message, current if isinstance(exc, RunLogError) else "")
        raise
    finally:
        s.recorder.close()


def preview_trigger_set(cfg: ExperimentConfig) -> tuple[TriggerSet, list[str]]:
    """The trigger set a run with ``cfg`` would embed, built without running anything (for the app's preview).

    Adversarial triggers depend on the trained model; without a checkpoint they are previewed
    against the untrained model, and the returned set's ``params`` say so.
    """
    a = assemble(cfg)
    ts = make_trigger_set(cfg, a.split.owner, a.split.num_classes, a.model.eval(), a.split.normalizer)
    if cfg.trigger.scheme == "adversarial" and not cfg.model.checkpoint:
        ts.params = {**ts.params, "preview_note": "made against the untrained model; a run uses the trained one"}
    return ts, a.split.data.train.classes
