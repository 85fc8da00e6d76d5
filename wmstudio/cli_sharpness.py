"""``wmstudio sharpness``: does a watermarked model's sharpness predict how much of its watermark survives?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sharpness", help="rank correlation of each watermarked model's curvature with the "
                                         "watermark effect left after each attack, over a sweep folder",
                       description="For a sweep folder: the Spearman rank correlation (Fieller 95% interval) "
                                   "between the curvature of each finished watermarked model (top Hessian "
                                   "eigenvalue and trace of the clean and the trigger loss, stored in its embed "
                                   "log) and the watermark effect (trigger accuracy - control) after each attack "
                                   "setting. Writes sharpness.md and sharpness.json into the folder.")
    p.add_argument("folder", help="a sweep folder (wmstudio sweep ... --out FOLDER)")
    p.add_argument("--measure", action="store_true", help="first compute the curvature of every finished "
                   "watermarked model that lacks it (stored in its embed log; minutes per model on a CPU)")
    p.add_argument("--images", type=int, default=1000, help="clean images for the clean loss (default 1000)")
    p.add_argument("--probes", type=int, default=10, help="Hutchinson probes for the trace (default 10)")
    p.add_argument("--trust", action="store_true", help="import the Python model file a log's config names; "
                   "refused otherwise, since a log may come from someone else (docs/checkpoints.md)")
    p.add_argument("--quiet", "-q", action="store_true")


def cmd_sharpness(args: argparse.Namespace) -> int:
    import json

    from wmstudio.safe_files import write_text
    from wmstudio.sweep.sharpness import as_json, correlations, markdown, measure_embeds

    folder = Path(args.folder)

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    if args.measure:
        made = measure_embeds(folder, images=args.images, probes=args.probes, trust_code=args.trust, say=say)
        say(f"{made} curvature measurements made")
    rows = correlations(folder)
    md = markdown(rows)
    # the folder may come from someone else: each file is written aside and renamed into place, and a link
    # planted under its name is refused with the file named (safe_files); a rerun replaces its own outputs
    write_text(folder / "sharpness.md", "# Sharpness after embedding against the watermark left by each attack\n\n"
               "Spearman's rho over the watermarked models (Fieller 95% interval); positive: sharper models keep "
               "more of the watermark.\n\n" + md, overwrite=True)
    write_text(folder / "sharpness.json", json.dumps(as_json(rows), indent=1, allow_nan=False), overwrite=True)
    print(md, end="")
    return 0
