"""How much bf16 moves a realistic model's landscape figures, and which tolerance rule accepts it (issue 27).

The watermarked ResNet-20 of bench_precision.py (the shipped base base:cifar10_resnet20 with a content
trigger embedded in 2 short epochs) is evaluated in fp32 and in bf16 autocast at points along random
filter-normalised directions (0.05 to 1.0 of each parameter tensor's norm, from the model out to where it
is destroyed), on 2,000 owner images a point. For each point: the flipped predictions, the accuracy and
loss differences, and whether the first rule (loss 0.5% relative, accuracy 0.002) and the rule auto uses
(loss 1% relative, accuracy 0.005) accept it; at the end, how often a check of 4 such points (auto checks
the centre and 3 points) would refuse bf16, drawing 4 of these points at random. Run:
    nice -n 15 .venv/bin/python benchmarks/precision_tolerance.py [--directions 6] [--clean 2000] [--seed 1]
Skips with a reason when ../shared/data/cifar10-jpg.tar.gz is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_landscape_resnet as resnet_bench  # noqa: E402
import bench_precision  # noqa: E402

from wmstudio.landscape.context import load_context  # noqa: E402
from wmstudio.landscape.point_work import make_evaluator  # noqa: E402
from wmstudio.landscape.precision_check import LOSS_RTOL, disagreement  # noqa: E402
from wmstudio.landscape.spec import LandscapeSpec  # noqa: E402
from wmstudio.landscape.stage_weights import stage_buffers, stage_vector  # noqa: E402

SCALES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--directions", type=int, default=6)
    ap.add_argument("--clean", type=int, default=2000, help="owner images a point")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="seed of the random directions")
    args = ap.parse_args()
    if not resnet_bench.CIFAR.is_file():
        print(f"skipped: the CIFAR-10 archive {resnet_bench.CIFAR} is not there")
        return
    torch.set_num_threads(args.threads)
    log = bench_precision.resnet_log(Path(tempfile.mkdtemp()) / "resnet20.h5", args.clean, 2, args.threads)
    ctx = load_context(log)
    ev = make_evaluator(ctx, LandscapeSpec(kind="random", name="tolerance", images=args.clean, data="owner"))
    centre = stage_vector(ctx, ev.pv, "embed").clone()
    buffers = stage_buffers(ctx, "embed")
    gen = torch.Generator().manual_seed(args.seed)
    first_fails = auto_fails = points = 0
    refused: list[tuple[bool, bool]] = []
    print(f"LOSS_RTOL = {LOSS_RTOL}")
    print(f"{'dir':>3} {'scale':>5} {'acc fp32':>8} {'up':>4} {'down':>4} {'d acc':>7} {'d loss':>7}  first rule  auto's rule")
    for r in range(args.directions):
        d = torch.randn(centre.shape, generator=gen)
        for _name, sl, _shape in ev.pv.slices():
            d[sl] *= centre[sl].norm() / d[sl].norm()
        for a in SCALES:
            x = centre + a * d
            ev.precision = "fp32"
            f = ev.evaluate(x, buffers)
            right32 = ev.clean_correct()
            ev.precision = "bf16"
            b = ev.evaluate(x, buffers)
            right16 = ev.clean_correct()  # up/down: right only in bf16 / only in fp32
            up, down = int((right16 & ~right32).sum()), int((right32 & ~right16).sum())
            first = disagreement(f, b, None, loss_rtol=0.005, acc_atol=0.002)
            auto = disagreement(f, b, (up, down))
            refused.append((bool(first), bool(auto)))
            first_fails += bool(first)
            auto_fails += bool(auto)
            points += 1
            print(f"{r:>3} {a:>5.2f} {f['test_acc']:>8.4f} {up:>4} {down:>4} {b['test_acc'] - f['test_acc']:>+7.4f} "
                  f"{(b['test_loss'] - f['test_loss']) / f['test_loss']:>+7.2%}  {'refused' if first else 'accepted':>10}"
                  f"  {'refused' if auto else 'accepted':>11}", flush=True)
    print(f"\n{points} points: the first rule refused {first_fails}, auto's rule {auto_fails}")
    draws = torch.randint(0, points, (10000, 4), generator=torch.Generator().manual_seed(0))
    for k, name in ((0, "the first rule"), (1, "auto's rule")):
        bad = torch.tensor([r[k] for r in refused])
        share = bad[draws].any(1).float().mean().item()
        print(f"a check of 4 of these points (10,000 draws) refuses bf16 under {name}: {share:.0%} of the time")


if __name__ == "__main__":
    main()
