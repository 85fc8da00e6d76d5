"""``wmstudio export-model LOG:STAGE --out FILE``: a stage's weights as a file other tools load.

``.safetensors`` (the metadata as a JSON string under the ``wmstudio`` key) or ``.pt``/``.pth``
(``{"state_dict": ..., "wmstudio": metadata}``, loadable with ``torch.load(weights_only=True)``).
The metadata names the architecture (registry name, torchvision name, or model file + factory, with
its options), the input shape and classes, and the normalisation the run used (mean/std), so that
``model.checkpoint`` and ``wmstudio verify`` can rebuild and evaluate the model from the file alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmstudio.errors import CheckpointError, RunLogError
from wmstudio.export_schema import EXPORT_FORMAT, EXPORT_VERSION
from wmstudio.models.code_trust import CodeOrigin
from wmstudio.status import Status

SUFFIXES = (".safetensors", ".pt", ".pth")


def split_log_stage(spec: str) -> tuple[Path, str]:
    """``RUN.h5:STAGE`` -> (path, stage); ``RUN.h5`` -> (path, "") for the last stage with weights."""
    for suffix in (".h5:", ".hdf5:"):
        if suffix in spec:
            path, _, stage = spec.rpartition(":")
            return Path(path).expanduser(), stage
    return Path(spec).expanduser(), ""


def stage_architecture(cfg: Any, stage: str, stage_names: list[str]) -> dict[str, Any]:
    """The architecture of the model a stage's weights belong to (an extracted copy may be another one)."""
    m = cfg.model
    distilled = "attack" in stage_names and getattr(getattr(cfg, "attack", None), "kind", "") == "distill"
    copied = ("extract" in stage_names or distilled) and stage in ("extract", "attack", "restore")
    if copied and cfg.extract.arch:
        return {"arch": cfg.extract.arch, "options": dict(cfg.extract.options), "file": "", "factory": "",
                "dual_bn": False}
    options = {k: v for k, v in m.options.items() if k != "dual_bn"}
    return {"arch": m.arch, "options": options, "file": str(Path(m.file).expanduser().resolve()) if m.file else "",
            "factory": m.factory, "dual_bn": cfg.embed.method == "app" and not copied}


def export_metadata(log: Path, stage: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A stage's weights and the metadata describing them."""
    import wmstudio
    from wmstudio.config_io import config_from_json
    from wmstudio.models.checkpoint import stage_with_weights
    from wmstudio.runlog_reader import RunLogReader

    reader = RunLogReader(log)
    names = reader.stage_names()
    stage = stage_with_weights(reader, log, stage)
    cfg = config_from_json(reader.config_json, reader.working_dir())
    try:
        info = reader.data_info()
    except KeyError as exc:
        raise RunLogError(f"{log}: the log lacks its data record ({exc})") from exc
    c, h, w = (int(x) for x in info["shape"])
    normalization = {"mean": [float(x) for x in info["mean"]], "std": [float(x) for x in info["std"]],
                     "setting": str(getattr(cfg.data, "normalize", "fit"))}
    meta = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "source": f"{log}:{stage}", "stage": stage,
            "architecture": stage_architecture(cfg, stage, names), "in_channels": c, "image_size": h,
            "num_classes": int(info["num_classes"]), "classes": [str(x) for x in info.get("classes", [])],
            "dataset": str(info.get("name", "")), "normalization": normalization,
            "partial": reader.stage(stage).status != Status.FINISHED, "wmstudio_version": wmstudio.__version__}
    return reader.weights(stage), meta


def export_model(spec: str, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write the weights of ``LOG:STAGE`` to ``out`` (.safetensors, .pt or .pth). Returns the metadata.

    An existing ``out`` is refused unless ``overwrite`` (checked before the log is read); the file is
    written aside and renamed (``safe_files.atomic_output``: never through a link), with the usual
    permissions (0666 less the umask) in both formats."""
    from wmstudio.safe_files import atomic_output, check_target, create_exclusive

    log, stage = split_log_stage(spec)
    out = Path(out).expanduser()
    if out.suffix not in SUFFIXES:
        raise CheckpointError(f"{out}: the export format is chosen by the suffix: {', '.join(SUFFIXES)}")
    check_target(out, overwrite)
    if not log.is_file():
        raise RunLogError(f"{log}: no such run log")
    weights, meta = export_metadata(log, stage)
    try:
        with atomic_output(out, overwrite) as tmp:
            if out.suffix == ".safetensors":
                from safetensors.torch import save

                data = save({k: v.contiguous() for k, v in weights.items()}, metadata={"wmstudio": json.dumps(meta)})
                with open(create_exclusive(tmp), "wb") as fh:  # safetensors' save_file would make it 0600
                    fh.write(data)
            else:
                torch.save({"state_dict": weights, "wmstudio": meta}, tmp)
    except OSError as exc:
        raise CheckpointError(f"{out}: cannot write ({exc})") from exc
    return meta


def build_from_metadata(meta: dict[str, Any], origin: CodeOrigin) -> nn.Module:
    """The (untrained) model an export's metadata describes. The metadata is not the user's: a Python
    model file it names is imported only when ``origin`` is trusted (else UntrustedCodeError)."""
    from wmstudio.errors import ConfigError
    from wmstudio.models import build_model

    try:
        a = meta["architecture"]
        if not isinstance(a, dict):
            raise TypeError(f"architecture must be a mapping, got {type(a).__name__}")
        origin.check(str(a.get("file") or ""))
        model = build_model(a["arch"], int(meta["in_channels"]), int(meta["num_classes"]), int(meta["image_size"]),
                            dict(a.get("options") or {}), a.get("file", ""), a.get("factory", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError("", f"the model file's wmstudio metadata is incomplete ({exc})") from exc
    if a.get("dual_bn"):
        from wmstudio.methods.dual_bn import to_dual_bn

        to_dual_bn(model)
    return model
