"""``wmstudio export-model`` and ``wmstudio verify``: models out of a run log, and ownership checks."""

from __future__ import annotations

import argparse
import json

COMMANDS = ("export-model", "verify", "null-models")
DEFAULT_NULL_COUNT = 20  # wmstudio null-models --count


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("export-model", help="write a stage's weights as .pt or .safetensors, with metadata",
                        description="Export the weights of a run log's stage (embed: watermarked, finetune: "
                                    "attacked, restore: restored, extract: the stolen copy) with the architecture, "
                                    "input shape, classes and normalisation in the file's metadata.")
    ex.add_argument("source", metavar="LOG[:STAGE]", help="run log and stage (default: the last stage with weights)")
    ex.add_argument("--out", "-o", required=True, help="the file to write: .safetensors, .pt or .pth")
    ex.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")
    ve = sub.add_parser("verify", help="test a suspect model for the watermark: trigger accuracy, p-value, decision",
                        description="Trigger accuracy of a suspect model, the binomial p-value against chance, a "
                                    "decision at the chosen false-positive rate, and the model's test accuracy.")
    ve.add_argument("--model", "-m", required=True, help="the suspect model's weights (any checkpoint format)")
    ve.add_argument("--trigger", "-t", required=True, help="the run log that embedded the watermark, or a trigger "
                                                           "folder (wmstudio triggers)")
    ve.add_argument("--fpr", type=float, default=0.01, help="false-positive rate of the decision (default 0.01)")
    ve.add_argument("--config", "-c", help="a config naming the model and data (default: the trigger log's)")
    ve.add_argument("--arch", help="the model's registry or torchvision:<name> architecture")
    ve.add_argument("--options", help='model options as JSON, e.g. \'{"width": 32}\'')
    ve.add_argument("--model-file", help="a Python file defining the model (with --factory)")
    ve.add_argument("--factory", help="the function or class in --model-file that builds the model")
    ve.add_argument("--trust", action="store_true", help="allow code the files name or hold: a Python model file "
                    "named by the model's export metadata or the trigger log's config, a TorchScript archive or "
                    "full pickle (refused otherwise: the suspect's files are not yours; docs/checkpoints.md)")
    ve.add_argument("--null", help="a null distribution (wmstudio null-models): also report the empirical p-value "
                                   "and the decision against models trained without the watermark")
    nm = sub.add_parser("null-models", help="train K models without the watermark and store their trigger accuracies",
                        description="The null distribution for `wmstudio verify --null`: K models trained with the "
                                    "config's recipe and no watermark (or given checkpoints), each measured on the "
                                    "trigger set; stored as a small HDF5 file (docs/null_models.md).")
    nm.add_argument("config", nargs="?", help="the experiment config whose recipe the null models follow")
    nm.add_argument("--count", "-k", type=int, default=DEFAULT_NULL_COUNT,
                    help=f"how many null models to train (default {DEFAULT_NULL_COUNT}: with K models the smallest "
                         "empirical p-value is 1/(K+1), so K >= 20 reaches a false-positive rate of 0.05)")
    nm.add_argument("--out", "-o", required=True, help="the null distribution file to write (.h5)")
    nm.add_argument("--trigger", "-t", help="a run log whose stored trigger set to measure on (default: the set the "
                                            "config builds; required with --checkpoints and adversarial triggers)")
    nm.add_argument("--checkpoints", nargs="+", metavar="FILE", help="measure these models instead of training")
    nm.add_argument("--models-dir", help="where the null models' run logs go (default: OUT's name + _models/)")
    nm.add_argument("--trust", action="store_true", help="with --checkpoints: allow code the files name or hold, "
                    "as wmstudio verify --trust")
    nm.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    nm.add_argument("--overwrite", action="store_true", help="replace --out and the null models' run logs if they "
                    "exist (default: refuse, before anything is trained)")


def cmd_export(args: argparse.Namespace) -> int:
    from wmstudio.export_model import export_model

    meta = export_model(args.source, args.out, overwrite=args.overwrite)
    a = meta["architecture"]
    arch = f"{a['file']}:{a['factory']}" if a.get("file") else a["arch"]
    norm = meta["normalization"]
    print(f"wrote {args.out}: {meta['source']} ({arch}, {meta['in_channels']}x{meta['image_size']}x"
          f"{meta['image_size']}, {meta['num_classes']} classes, mean {[round(x, 4) for x in norm['mean']]}, "
          f"std {[round(x, 4) for x in norm['std']]})" + ("; partial weights of an unfinished stage" if meta["partial"] else ""))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from wmstudio.errors import ConfigError
    from wmstudio.verify import verify

    options = None
    if args.options:
        try:
            options = json.loads(args.options)
        except ValueError as exc:
            raise ConfigError("--options", f"expected a JSON object, got {args.options!r} ({exc})") from None
        if not isinstance(options, dict):
            raise ConfigError("--options", f"expected a JSON object, got {args.options!r}")
    result = verify(args.model, args.trigger, args.fpr, arch=args.arch or "", options=options,
                    model_file=args.model_file or "", factory=args.factory or "", config=args.config, null=args.null,
                    trust_code=args.trust)
    print(result.text())
    return 0


def cmd_null_models(args: argparse.Namespace) -> int:
    import sys

    from wmstudio.errors import ConfigError
    from wmstudio.null_models import measure_checkpoints, train_null_models

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.checkpoints:
        if not args.trigger:
            raise ConfigError("--trigger", "--checkpoints are measured on a stored trigger set: give --trigger RUN.h5")
        nd = measure_checkpoints(args.checkpoints, args.trigger, args.out, args.config, say, args.trust,
                                 overwrite=args.overwrite)
    else:
        if not args.config:
            raise ConfigError("config", "give the config whose recipe the null models follow, or --checkpoints")
        nd = train_null_models(args.config, args.count, args.out, args.trigger, args.models_dir, args.set, say,
                               overwrite=args.overwrite)
    print(f"wrote {args.out}: {nd.count} null models on {nd.n_triggers} triggers; trigger acc mean "
          f"{float(nd.trigger_acc.mean()):.3f}, max {float(nd.trigger_acc.max()):.3f}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "null-models":
        return cmd_null_models(args)
    return cmd_export(args) if args.command == "export-model" else cmd_verify(args)
