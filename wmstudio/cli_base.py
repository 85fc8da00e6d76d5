"""``wmstudio base-model``: list, train and check the shipped base models (wmstudio/base_models.py)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from wmstudio import base_models
from wmstudio.status import Status


def add_parsers(sub: argparse._SubParsersAction) -> None:
    bm = sub.add_parser("base-model", help="list, train or check the shipped base models (model.checkpoint = base:NAME)",
                        description="Base models are trained weights every experiment can start from: "
                                    "model.checkpoint = \"base:NAME\" (checked against the card's SHA-256).")
    bsub = bm.add_subparsers(dest="base_command", required=True)
    bsub.add_parser("list", help="the shipped base models with their test accuracy and recipe")
    tr = bsub.add_parser("train", help="train a recipe's clean stage and write NAME.safetensors and NAME.json",
                         description="Runs only the recipe's clean 'pretrain' stage (embed.clean_epochs), exports "
                                     "its weights as .safetensors and writes the card: checksum, recipe, split, "
                                     "test accuracy, time, precision, threads and versions.")
    tr.add_argument("recipe", help="the recipe config (e.g. resources/base_models/cifar10_resnet20.toml)")
    tr.add_argument("--name", help="the base model's name (default: the recipe's file name)")
    tr.add_argument("--out-dir", "-o", help="where NAME.safetensors and NAME.json go (default: beside the recipe)")
    tr.add_argument("--log", help="the run log of the training (default: OUT_DIR/NAME.train.h5)")
    tr.add_argument("--from-log", help="describe an existing run log's finished pretrain stage instead of training")
    tr.add_argument("--check", action="store_true", help="retrain into a scratch folder and compare the weights' "
                                                        "tensors (their SHA-256) with the shipped card's (exit 1 when "
                                                        "they differ)")
    tr.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    tr.add_argument("--note", default="", help="a note for the card, e.g. the conditions the time was measured in")
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    tr.add_argument("--overwrite", action="store_true", help="replace existing output files (default: refuse)")


def _list() -> int:
    names = base_models.available()
    if not names:
        print("no base models shipped")
    for name in names:
        c = base_models.card(name)
        t = c.get("training", {})
        print(f"{base_models.PREFIX}{name:24s} {c.get('architecture', '?'):10s} test acc {c.get('test_acc', float('nan')):.4f}  "
              f"{c.get('epochs', '?')} epochs in {t.get('seconds', float('nan')) / 60:.0f} min ({t.get('precision', '?')}, "
              f"{t.get('threads', '?')} threads)  recipe {c.get('recipe', '?')}  sha256 {str(c.get('sha256', ''))[:12]}")
    return 0


def _train(recipe: Path, log: Path, overrides: list[str], quiet: bool, overwrite: bool) -> None:
    from wmstudio.config_io import load_config
    from wmstudio.errors import StageFailed
    from wmstudio.pipeline import run_experiment
    from wmstudio.progress import ProgressPrinter

    cfg = load_config(recipe, overrides)
    if cfg.embed.clean_epochs <= 0:
        from wmstudio.errors import ConfigError

        raise ConfigError("embed.clean_epochs", f"{recipe}: a base-model recipe trains the clean stage; set "
                                                "embed.clean_epochs > 0")
    result = run_experiment(cfg, log, (lambda e: None) if quiet else ProgressPrinter(), stages=[base_models.STAGE],
                            overwrite=overwrite)
    if result.status != Status.FINISHED:
        raise StageFailed(f"{log}: the base model's training ended {result.status}")


def _export(log: Path, recipe: Path, out_dir: Path, name: str, overwrite: bool, note: str = "") -> dict:
    from wmstudio.export_model import export_model

    weights = out_dir / f"{name}.safetensors"
    export_model(f"{log}:{base_models.STAGE}", weights, overwrite=overwrite)
    kept = out_dir / f"{name}.toml"
    if kept.resolve() != recipe.resolve():
        from wmstudio.safe_files import copy_file

        copy_file(recipe, kept, overwrite=overwrite)
    from wmstudio.base_model_card import make_card, write_card

    card = make_card(log, kept, weights, name)
    if note:
        card["note"] = note
    write_card(out_dir / f"{name}.json", card)
    return card


def _cmd_train(args: argparse.Namespace) -> int:
    recipe = Path(args.recipe).expanduser()
    name = args.name or recipe.stem
    if args.check:
        shipped = base_models.card(name)
        with tempfile.TemporaryDirectory(prefix="wmstudio-base-") as tmp:
            log = Path(tmp) / "train.h5"
            _train(recipe, log, args.set, args.quiet, overwrite=True)
            card = _export(log, recipe, Path(tmp), name, overwrite=True)
        same = card["tensors_sha256"] == shipped.get("tensors_sha256")
        print(f"retrained {name}: weights sha256 {card['tensors_sha256']} test acc {card['test_acc']:.4f}\n"
              f"shipped   {name}: weights sha256 {shipped.get('tensors_sha256')} test acc {shipped['test_acc']:.4f}\n"
              + ("identical, bit for bit" if same else "DIFFERENT weights (platform, threads or versions differ? "
                 f"shipped: {json.dumps(shipped.get('versions'))}, threads {shipped['training'].get('threads')})"))
        return 0 if same else 1
    out_dir = Path(args.out_dir).expanduser() if args.out_dir else recipe.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.from_log:
        log = Path(args.from_log).expanduser()
    else:
        log = Path(args.log).expanduser() if args.log else out_dir / f"{name}.train.h5"
        _train(recipe, log, args.set, args.quiet, args.overwrite)
    card = _export(log, recipe, out_dir, name, args.overwrite, args.note)
    print(f"{out_dir / (name + '.safetensors')}: test acc {card['test_acc']:.4f}, sha256 {card['sha256']}, "
          f"{card['training']['seconds'] / 60:.1f} min ({card['training']['precision']})")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.base_command == "list":
        return _list()
    return _cmd_train(args)



