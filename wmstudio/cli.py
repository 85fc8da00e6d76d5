"""The ``wmstudio`` command line: everything the app does, headless and scriptable."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from wmstudio.errors import WmStudioError
from wmstudio.status import Status


def _cmd_run(args: argparse.Namespace, config_path: str | Path) -> int:
    from wmstudio.config_io import load_config
    from wmstudio.control import RunControl
    from wmstudio.pipeline import run_experiment
    from wmstudio.progress import ProgressPrinter

    cfg = load_config(config_path, args.set)
    control = RunControl()

    def on_sigint(_sig: int, _frame: object) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        print("\ncancelling after this batch (Ctrl-C again to abort at once)", file=sys.stderr)
        control.cancel()

    # SIGTERM like Ctrl-C, and both also when started in the background (where SIGINT starts out ignored)
    previous = {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
        callback = (lambda e: None) if args.quiet else ProgressPrinter()
        result = run_experiment(cfg, args.out, callback, control, stages, overwrite=args.overwrite)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.quiet:
        from wmstudio.inspect_log import summarize

        print(summarize(str(args.out)))
    return 0 if result.status == Status.FINISHED else 130


def _cmd_config(args: argparse.Namespace) -> int:
    from wmstudio.config import ExperimentConfig
    from wmstudio.config_io import load_config, to_toml

    if args.check:
        cfg = load_config(args.check, args.set)
        print(f"{args.check}: valid")
        if args.set:
            print(to_toml(cfg, comments=False))
        return 0
    print(to_toml(ExperimentConfig(), comments=True), end="")
    return 0


def _cmd_models(_args: argparse.Namespace) -> int:
    from wmstudio.catalog import MODELS

    for name, desc in MODELS.list():
        print(f"{name:<12} {desc}")
    print(f"{'torchvision:<name>':<12} any torchvision classification model, e.g. torchvision:resnet50")
    return 0


def _cmd_triggers(args: argparse.Namespace) -> int:
    from wmstudio.runlog_reader import RunLogReader
    from wmstudio.triggers import export_folder

    ts = RunLogReader(args.log).trigger_set()
    out = export_folder(ts, args.out, overwrite=args.overwrite)
    print(f"wrote {len(ts)} trigger images to {out} (labels.csv, trigger.json)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wmstudio", description="Watermark Studio: embed, attack and restore "
                                "trigger-set watermarks in image classifiers.")
    p.add_argument("--version", action="version", version=f"wmstudio {__import__('wmstudio').__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_run_options(sp: argparse.ArgumentParser, out_default: str | None) -> None:
        sp.add_argument("--out", "-o", required=out_default is None, default=out_default, help="the HDF5 run log to write")
        sp.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set finetune.lr=0.1 (repeatable)")
        sp.add_argument("--stages", help="comma-separated subset of pretrain,embed,finetune,extract,attack,restore")
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress output")
        sp.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse)")

    run = sub.add_parser("run", help="run an experiment from a config file")
    run.add_argument("config", help="TOML or JSON config (see `wmstudio config --example`)")
    add_run_options(run, None)
    demo = sub.add_parser("demo", help="the built-in demo: embed -> fine-tune -> restore on the bundled digits")
    add_run_options(demo, "runs/demo.h5")

    cfg = sub.add_parser("config", help="print a complete, commented example config, or check one")
    cfg.add_argument("--example", action="store_true", help="print the example (the default)")
    cfg.add_argument("--check", metavar="FILE", help="validate FILE and report the first problem")
    cfg.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE")

    ins = sub.add_parser("inspect", help="summarise a run log, one row per stage")
    ins.add_argument("log")
    sub.add_parser("models", help="list the model registry")
    trig = sub.add_parser("triggers", help="export a run's trigger set as PNG files with labels.csv")
    trig.add_argument("log")
    trig.add_argument("--out", "-o", required=True, help="folder to write")
    trig.add_argument("--overwrite", action="store_true", help="replace trigger files already in --out (default: refuse)")
    from wmstudio.cli_landscape import add_parsers

    add_parsers(sub)
    from wmstudio import cli_curvature, cli_sweep

    cli_curvature.add_parser(sub)
    from wmstudio import cli_noise, cli_sharpness

    cli_noise.add_parser(sub)
    cli_sharpness.add_parser(sub)
    cli_sweep.add_parsers(sub)
    from wmstudio import cli_models

    cli_models.add_parsers(sub)
    from wmstudio import cli_base

    cli_base.add_parsers(sub)
    gui = sub.add_parser("gui", help="open the desktop app (same as wmstudio-gui)")
    gui.add_argument("gui_args", nargs=argparse.REMAINDER, help="arguments for wmstudio-gui (--demo, logs, ...)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gui"]:  # everything after `gui` is the app's (argparse's REMAINDER drops leading options)
        from wmstudio.gui.app import main as gui_main  # the only place the CLI reaches into Qt

        return gui_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args, args.config)
        if args.command == "demo":
            from wmstudio.resources import example_config

            return _cmd_run(args, example_config("demo"))
        if args.command == "config":
            return _cmd_config(args)
        if args.command == "inspect":
            from wmstudio.inspect_log import summarize

            text = summarize(args.log)
            try:  # `wmstudio inspect LOG | head -1`: a reader that stops early is not an error
                print(text)
                sys.stdout.flush()
            except BrokenPipeError:
                import os

                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            return 0
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "triggers":
            return _cmd_triggers(args)
        if args.command == "gui":
            from wmstudio.gui.app import main as gui_main  # the only place the CLI reaches into Qt

            return gui_main(args.gui_args)
        if args.command in ("sweep", "report"):
            from wmstudio import cli_sweep

            return cli_sweep.cmd_sweep(args) if args.command == "sweep" else cli_sweep.cmd_report(args)
        if args.command in ("export-model", "verify", "null-models"):
            from wmstudio import cli_models

            return cli_models.run(args)
        if args.command == "base-model":
            from wmstudio import cli_base

            return cli_base.run(args)
        if args.command == "curvature":
            from wmstudio import cli_curvature

            return cli_curvature.cmd_curvature(args)
        if args.command == "noise-curve":
            from wmstudio import cli_noise

            return cli_noise.cmd_noise_curve(args)
        if args.command == "sharpness":
            from wmstudio import cli_sharpness

            return cli_sharpness.cmd_sharpness(args)
        if args.command in ("landscape", "export"):
            from wmstudio import cli_landscape

            return cli_landscape.cmd_landscape(args) if args.command == "landscape" else cli_landscape.cmd_export(args)
    except WmStudioError as exc:
        print(f"wmstudio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wmstudio: aborted", file=sys.stderr)
        return 130
    return 1
