"""``wmstudio inspect``: a summary of a run log, one row per stage."""

from __future__ import annotations

import json
import math

from wmstudio.errors import WmStudioError
from wmstudio.metrics.collapse import collapse_reason
from wmstudio.runlog_reader import RunLogReader, StageRecord
from wmstudio.status import Status


def _f(value: float, fmt: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _model_name(m: dict) -> str:
    if m.get("file"):
        return f"{m['file']}:{m.get('factory', '')} (your model file)"
    arch = str(m.get("arch", ""))
    return f"{arch} ({'torchvision' if arch.startswith('torchvision:') else 'registry'})"


def model_lines(model_cfg: dict, model_json: str | None) -> list[str]:
    """The model (file + factory, or registry name) and its starting checkpoint, from the log."""
    record = json.loads(model_json) if model_json else {}
    m = record.get("model") or model_cfg
    opts = m.get("options") or {}
    lines = [f"model     {_model_name(m)}" + (f", options {opts}" if opts else "")]
    ckpt = record.get("checkpoint")
    source = (ckpt or {}).get("source") or model_cfg.get("checkpoint")
    if source:
        details = [ckpt["format"], f"{ckpt['tensors']} tensors"] if ckpt else []
        if ckpt and ckpt.get("sha256"):
            details.append(f"sha256 {ckpt['sha256'][:16]}")
        lines.append(f"checkpoint {source}" + (f" ({', '.join(details)})" if details else ""))
    else:
        lines.append("checkpoint none (trained from a fresh initialisation)")
    if model_cfg.get("trust_checkpoint_code"):
        lines.append("          model.trust_checkpoint_code = true: code in the checkpoint was allowed to run")
    return lines


def _precision(cfg: dict) -> str:
    """The training steps' arithmetic (run.precision; fp32 in logs written before it existed)."""
    run = cfg.get("run")
    value = run.get("precision", "fp32") if isinstance(run, dict) else "fp32"
    return f"{value} training steps, fp32 evaluation" if value == "bf16" else str(value)


def summarize(path: str) -> str:
    r = RunLogReader(path)
    a = r.attrs
    cfg = json.loads(r.config_json)
    cfg = cfg if isinstance(cfg, dict) else {}
    lines = [f"run log   {path}",
             f"run       {a.get('run_name', '')}   status: {r.status}"
             + (f" ({a['status_message']})" if a.get("status_message") else ""),
             f"created   {a.get('created', '')}   device: {a.get('device', '')}   precision: {_precision(cfg)}",
             f"versions  wmstudio {a.get('version_wmstudio')}, torch {a.get('version_torch')}, h5py {a.get('version_h5py')}"]
    if r.status == Status.RUNNING:
        lines.append("          (still running, or the process ended without closing the log: "
                     "everything up to the last evaluation is below)")
    if r.has("data"):  # a run that stopped early may have neither
        info = r.data_info()
        splits = r.splits()
        lines.append(f"data      {info.get('name')} ({info.get('dataset')}), {info.get('num_classes')} classes, "
                     f"shape {info.get('shape')}; owner {len(splits['owner'])}, attacker {len(splits['attacker'])}, "
                     f"test {len(splits['test'])}")
    if r.has("trigger"):
        trig = r.trigger(images=False)  # labels and settings: the images are not needed here
        lines.append(f"trigger   {trig['scheme']} x{len(trig['labels'])}, seed {trig['seed']}, {trig['params']}")
        lines.append(f"control   {_control_words(trig.get('control_kind'))}")
    lines += model_lines(cfg.get("model", {}), a.get("model_json"))
    num_classes = int(r.data_info().get("num_classes") or 0) if r.has("data") else 0
    header = (f"{'stage':<10}{'status':<15}{'epochs':>7}{'steps':>7}{'test acc':>10}{'trig acc':>15}{'control':>9}"
              f"{'effect':>8}{'drift L2':>10}{'rel':>7}{'cos':>7}{'p-value':>10}")
    lines += ["", header, "-" * len(header)]
    stages = r.stages()
    for st in stages:
        trig = st.eval.get("trigger_acc")
        trig_s = f"{_f(float(trig[0]), '.2f')} -> {_f(float(trig[-1]), '.2f')}" if trig is not None and len(trig) else "-"
        steps = int(st.train["global_step"].shape[0]) if "global_step" in st.train else 0
        epochs = st.final("epoch")
        lines.append(f"{st.name:<10}{st.status:<15}{_f(epochs, 'g'):>7}{steps:>7}{_f(st.final('test_acc')):>10}"
                     f"{trig_s:>15}{_recorded(st, 'control_acc'):>9}{_recorded(st, 'trigger_effect', '+.2f'):>8}"
                     f"{_f(st.final('drift_l2'), '.2f'):>10}{_f(st.final('drift_rel')):>7}"
                     f"{_f(st.final('drift_cos')):>7}{_f(st.final('p_value'), '.1e'):>10}")
        if st.message:
            lines.append(f"          {st.message}")
        if st.name == "attack":
            lines += [f"          {line}" for line in attack_findings(r)]
        curvature = r.stage_json(st.name, "curvature_json")
        if isinstance(curvature, dict):
            from wmstudio.curvature.job import summary

            lines += [f"          curvature {key}: {summary(res)}" for key, res in sorted(curvature.items())
                      if isinstance(res, dict)]
        flag = stage_flag(st, num_classes)
        if flag:
            lines.append(f"          COLLAPSED: {flag}; its trigger accuracy says nothing about a watermark")
    if not any("control_acc" in st.eval for st in stages):
        lines.append("control and effect: not recorded (a log written before controls were recorded)")
    return "\n".join(lines)


def attack_findings(r: RunLogReader) -> list[str]:
    """What the removal attack found, where it records a finding (the class Neural Cleanse flagged)."""
    try:
        info = r.stage_json("attack", "attack_json")
    except (WmStudioError, KeyError, OSError):
        return []
    if not isinstance(info, dict) or info.get("kind") != "neural_cleanse" or "flagged_class" not in info:
        return []
    from wmstudio.attacks.neural_cleanse import flagged_words

    try:
        return [flagged_words(info)]
    except (KeyError, IndexError, TypeError, ValueError):
        return ["Neural Cleanse: its findings in the log are unreadable"]


def _control_words(kind: object) -> str:
    if kind == "paired":
        return "paired: the same source images without the trigger (effect = trigger acc - control rate)"
    if kind == "matched":
        return "matched: clean held-out images of another class than each trigger's label (effect = trigger acc - control rate)"
    return "not recorded (a log written before controls were recorded)"


def _recorded(st: StageRecord, column: str, fmt: str = ".2f") -> str:
    """The stage's last value of ``column``; "n/r" (not recorded) where an older log lacks it."""
    if column not in st.eval:
        return "n/r"
    return _f(st.final(column), fmt)


def stage_flag(st: StageRecord, num_classes: int) -> str:
    """Why the stage's final model is flagged as collapsed ("" when it is not, or cannot be told)."""
    share = st.final("majority_share")
    return collapse_reason(st.final("test_acc"), share, num_classes) if num_classes > 0 else ""
