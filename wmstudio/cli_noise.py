"""``wmstudio noise-curve``: a stage's watermark under Gaussian weight noise, one row per noise scale."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def _scales(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated numbers expected, e.g. 0,0.05,0.1") from exc


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("noise-curve", help="trigger accuracy, control and test accuracy of a stage's model under "
                                           "Gaussian weight noise",
                       description="Perturb every weight tensor of one stage's model with Gaussian noise of std "
                                   "SCALE x that tensor's RMS, DRAWS times per scale, and print per scale the mean "
                                   "trigger accuracy, control rate, watermark effect (t-intervals over the triggers) "
                                   "and test accuracy. Several logs give one table each, for curves side by side "
                                   "(e.g. a plain and a certified watermark).")
    p.add_argument("logs", nargs="+", help="run logs (HDF5)")
    p.add_argument("--stage", "-s", default="embed", help="the stage whose saved model is measured (default embed)")
    p.add_argument("--scales", type=_scales, default=[0.0, 0.05, 0.1, 0.2, 0.3],
                   help="noise scales, comma-separated (default 0,0.05,0.1,0.2,0.3)")
    p.add_argument("--draws", type=int, default=8, help="noise draws per scale (default 8)")
    p.add_argument("--test-images", type=int, default=2000, help="test images per draw (0: all; default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", default="", help="write every curve to this JSON file")
    p.add_argument("--plot", default="", help="draw the curves to this figure (.png, .svg or .pdf): the watermark "
                   "effect (with its interval) and the test accuracy against the noise scale")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json or --plot file")
    p.add_argument("--device", default="auto")
    p.add_argument("--trust", action="store_true", help="import the Python model file (model.file) a log's config "
                   "names; refused otherwise, since a log may come from someone else (docs/checkpoints.md)")
    p.add_argument("--quiet", "-q", action="store_true")


def cmd_noise_curve(args: argparse.Namespace) -> int:
    import torch

    from wmstudio.errors import ConfigError, RunLogError
    from wmstudio.landscape.context import load_context
    from wmstudio.metrics.noise_curve import check_scales, format_curve, noise_curve

    check_scales(args.scales, args.draws)
    if args.test_images < 0:
        raise ConfigError("--test-images", f"{args.test_images}: 0 (all) or more expected")
    result = []
    for log in args.logs:
        ctx = load_context(log, args.device, args.trust)
        have = ctx.stages_with_weights()
        if args.stage not in have:
            raise RunLogError(f"{log}: stage {args.stage!r} has no saved weights (stages with weights: "
                              f"{', '.join(have) or 'none'})")
        if len(ctx.trigger_labels) == 0:
            raise RunLogError(f"{log}: the log holds no trigger set")
        ctx.model.load_state_dict(ctx.state(args.stage))
        ctx.model.float()
        n = len(ctx.test.labels) if args.test_images == 0 else min(args.test_images, len(ctx.test.labels))
        gen = torch.Generator().manual_seed(args.seed)
        idx = torch.randperm(len(ctx.test.labels), generator=gen)[:n].to(ctx.device)

        def progress(done: int, total: int, name: str = Path(log).name) -> None:
            if not args.quiet:
                print(f"\r{name}: {done}/{total} draws", end="", file=sys.stderr, flush=True)

        points = noise_curve(ctx.model, ctx.normalizer, ctx.trigger_images, ctx.trigger_labels, ctx.control_images,
                             ctx.test.images[idx], ctx.test.labels[idx], args.scales, args.draws, args.seed,
                             ctx.memory_format, progress)
        if not args.quiet:
            print(file=sys.stderr)
        method = ctx.cfg.embed.method
        print(f"{log} [{args.stage}, embed.method = {method}, {len(ctx.trigger_labels)} triggers, {n} test images, "
              f"control: {ctx.control_kind or 'none'}]")
        print(format_curve(points))
        result.append({"log": str(log), "stage": args.stage, "method": method, "triggers": len(ctx.trigger_labels),
                       "test_images": n, "control": ctx.control_kind, "seed": args.seed,
                       "points": [{k: (v if not (isinstance(v, float) and math.isnan(v)) else None)
                                   for k, v in p.as_dict().items()} for p in points]})
    if args.plot:
        from wmstudio.figures.render import write

        write(curve_figure(result), args.plot, overwrite=args.overwrite)
    if args.json_out:
        from wmstudio.safe_files import write_text

        write_text(args.json_out, json.dumps({"format": "wmstudio-noise-curve", "version": 1, "curves": result},
                                             indent=1) + "\n", overwrite=args.overwrite)
    return 0


COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def curve_figure(curves: list[dict[str, Any]]) -> Any:  # noqa: ANN401 - a wmstudio.figures FigureSpec
    """Two panels against the noise scale: the watermark effect (dotted: its 95% interval; trigger accuracy
    where there is no control) and the test accuracy; one colour a log, named by its embedding method."""
    import numpy as np

    from wmstudio.figures.spec import FigureSpec, Line, Panel, Rule

    top = Panel(title="watermark under Gaussian weight noise", ylabel="trigger effect (trigger - control)",
                xlabel="", grid=True, rules=[Rule(0.0, vertical=False)])
    bottom = Panel(xlabel="noise std / weight RMS (per tensor)", ylabel="test accuracy", grid=True, height=0.7)
    names = [c["method"] for c in curves]
    for i, c in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        label = c["method"] if names.count(c["method"]) == 1 else f"{c['method']} ({Path(c['log']).stem})"
        pts = c["points"]
        x = np.array([p["scale"] for p in pts], dtype=float)
        has_effect = all(p["effect"] is not None for p in pts)
        key = "effect" if has_effect else "trigger_acc"
        lo, hi = ("effect_lo", "effect_hi") if has_effect else ("trigger_lo", "trigger_hi")

        def col(k: str, pts: list[dict[str, Any]] = pts) -> np.ndarray:
            return np.array([np.nan if p[k] is None else p[k] for p in pts], dtype=float)

        top.lines.append(Line(x, col(key), colour, width=2.0, label=label, marker="o"))
        top.lines += [Line(x, col(lo), colour, width=1.0, dash=":"), Line(x, col(hi), colour, width=1.0, dash=":")]
        bottom.lines.append(Line(x, col("test_acc"), colour, width=2.0, label=label, marker="o"))
    if not all(all(p["effect"] is not None for p in c["points"]) for c in curves):
        top.ylabel = "trigger effect, or trigger accuracy (no control)"
    return FigureSpec([top, bottom], aspect=0.9, share_x=True, description="wmstudio noise-curve")
