"""``wmstudio export-model`` and ``wmstudio verify``: models out of a run log, and ownership checks."""

from __future__ import annotations

import argparse
import json

COMMANDS = ("export-model", "verify")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("export-model", help="write a stage's weights as .pt or .safetensors, with metadata",
                        description="Export the weights of a run log's stage (embed: watermarked, finetune: "
                                    "attacked, restore: restored, extract: the stolen copy) with the architecture, "
                                    "input shape, classes and normalisation in the file's metadata.")
    ex.add_argument("source", metavar="LOG[:STAGE]", help="run log and stage (default: the last stage with weights)")
    ex.add_argument("--out", "-o", required=True, help="the file to write: .safetensors, .pt or .pth")
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


def cmd_export(args: argparse.Namespace) -> int:
    from wmstudio.export_model import export_model

    meta = export_model(args.source, args.out)
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
                    model_file=args.model_file or "", factory=args.factory or "", config=args.config)
    print(result.text())
    return 0


def run(args: argparse.Namespace) -> int:
    return cmd_export(args) if args.command == "export-model" else cmd_verify(args)
