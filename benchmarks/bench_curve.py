"""Connecting-curve training against plain training: one epoch each, on a run log's model and owner data.

A curve landscape (``wmstudio landscape LOG --kind curve``) trains the bend of a quadratic Bezier
curve between two stages (``wmstudio.landscape.curve.BendTrainer``): each step builds the point
``phi(t)`` from the ends and the bend, runs the model on it through ``torch.func.functional_call``
and steps the bend. Side by side, on the same batches of the log's owner data:

  plain    one epoch of ordinary training of the model (the first stage's weights): SGD with
           momentum 0.9 on the model's parameters, BatchNorm in training mode
  curve    one epoch of the bend's training between the two stages (the same optimiser on the bend)

Each is run ``--repeat`` times; the median epoch time is printed and their ratio (curve / plain).
Both clocks are printed: wall time, and process CPU time (fairer on a machine shared with other work).

Run (on a shared machine, with a low priority):
    .venv/bin/python benchmarks/bench_curve.py runs/demo.h5 [--models embed,finetune] [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from wmstudio.landscape.context import load_context
from wmstudio.landscape.curve import BendTrainer
from wmstudio.landscape.flat import ParamVector


def timed(fn: object) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()  # type: ignore[operator]
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", help="a run log with the two stages' weights")
    ap.add_argument("--models", default="embed,finetune", help="the curve's two ends")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = load_context(args.log, args.device)
    a, b = [m.strip() for m in args.models.split(",")]
    pv = ParamVector(ctx.model)
    w0, w1 = pv.from_state_dict(ctx.state(a)), pv.from_state_dict(ctx.state(b))
    x, y = ctx.owner.images, ctx.owner.labels
    sync = (lambda: torch.cuda.synchronize(ctx.device)) if ctx.device.type == "cuda" else (lambda: None)

    plain_model = copy.deepcopy(ctx.model)
    plain_model.load_state_dict(ctx.state(a))

    def plain_epoch() -> None:
        plain_model.train()
        opt = torch.optim.SGD(plain_model.parameters(), lr=0.01, momentum=0.9)
        order = torch.randperm(len(y)).to(y.device)
        for s in range(0, len(order), args.batch):
            idx = order[s:s + args.batch]
            loss = F.cross_entropy(plain_model(ctx.normalizer(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()

    def curve_epoch() -> None:
        BendTrainer(ctx.model, w0, w1, x, y, ctx.normalizer, 0.01, args.batch, seed=0).train(1)
        sync()

    plain_epoch()  # warm-up of both
    curve_epoch()
    plain = [timed(plain_epoch) for _ in range(args.repeat)]
    curve = [timed(curve_epoch) for _ in range(args.repeat)]
    steps = (len(y) + args.batch - 1) // args.batch
    print(f"{args.log}: {type(ctx.model).__name__}, {pv.numel:,} parameters, {len(y)} owner images, batch "
          f"{args.batch} ({steps} steps an epoch), device {ctx.device}, {torch.get_num_threads()} threads")
    for clock, k in (("wall", 0), ("CPU", 1)):
        p, c = statistics.median(r[k] for r in plain), statistics.median(r[k] for r in curve)
        print(f"  {clock:4}: plain epoch {p:.3f} s, curve epoch {c:.3f} s, ratio curve/plain {c / p:.2f} "
              f"(median of {args.repeat})")


if __name__ == "__main__":
    main()
