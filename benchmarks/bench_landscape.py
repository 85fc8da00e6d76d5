"""Loss-landscape evaluation speed: the product's hot loop, side by side in one run.

  pure forward   the model's forward pass alone over the same batches (no perturbation, no loss)
  grid           wmstudio's evaluator: in-place perturbation from a flat vector, BatchNorm folded,
                 pre-normalised device tensors, one synchronisation per point
  reference      the straightforward loop: build a perturbed state_dict, load_state_dict, iterate a
                 DataLoader over the uint8 images, normalise per batch, sum the loss per batch
  reference, per-sample transforms   the same with the usual torchvision pattern of normalising
                 each image in the Dataset's __getitem__ (what most landscape scripts do)

Each figure is forward samples/s over the clean images plus the trigger set. Then the time to a
21x21 coarse preview of the demo model (first refinement level of a 41x41 surface, from the call,
data and model loading included). Run:
    .venv/bin/python benchmarks/bench_landscape.py [--points 60]
Targets (2-core CPU): grid >= 0.9x pure forward; grid >= 3x reference; 21x21 preview < 2 s.
The CIFAR-10 ResNet-20 figures (a real model at the compute limit) are in bench_landscape_resnet.py.
(The "vs reference" column is against the batch-normalising reference, the stricter of the two.)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from wmstudio.config_io import load_config
from wmstudio.events import LandscapePoints
from wmstudio.landscape import LandscapeSpec, compute_landscape
from wmstudio.landscape.context import load_context
from wmstudio.landscape.point_work import make_evaluator, points_from_store
from wmstudio.pipeline import run_experiment
from wmstudio.resources import example_config


class PerSampleTransform(torch.utils.data.Dataset):
    """The usual torchvision pattern: each image converted and normalised in __getitem__."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, normalizer) -> None:  # noqa: ANN001
        self.images, self.labels = images, labels
        self.mean = torch.tensor(normalizer.mean).view(-1, 1, 1)
        self.std = torch.tensor(normalizer.std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):  # noqa: ANN204
        return (self.images[i].float() / 255.0 - self.mean) / self.std, self.labels[i]


def reference_rate(ctx, spec, points, n_points: int, per_sample: bool = False) -> float:  # noqa: ANN001
    clean = ctx.test if spec.data == "test" else ctx.owner
    n = min(spec.images, len(clean))
    images = torch.cat([clean.images[:n], ctx.trigger_images]).cpu()
    labels = torch.cat([clean.labels[:n], ctx.trigger_labels]).cpu()
    dataset = PerSampleTransform(images, labels, ctx.normalizer) if per_sample else TensorDataset(images, labels)
    loader = DataLoader(dataset, batch_size=128, shuffle=False)
    base = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    names = [k for k, _ in ctx.model.named_parameters()]
    buf = torch.empty(sum(p.numel() for p in ctx.model.parameters()))
    start = time.perf_counter()
    for k in range(n_points):
        flat = points.params(k, buf)
        sd, off = dict(base), 0
        for name in names:
            size = base[name].numel()
            sd[name] = flat[off:off + size].view_as(base[name]).clone()
            off += size
        ctx.model.load_state_dict(sd)
        ctx.model.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in loader:
                x = x if per_sample else ctx.normalizer(x)
                total += F.cross_entropy(ctx.model(x), y, reduction="sum").item()
    return n_points * len(labels) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    try:
        log = tmp / "demo.h5"
        t0 = time.perf_counter()
        run_experiment(load_config(example_config("demo"), [f"run.threads={args.threads}"]), log)
        print(f"demo run for the benchmark: {time.perf_counter() - t0:.1f} s ({log})")

        # time to the 21x21 preview, from the call (loading included)
        start = time.perf_counter()
        first: dict[str, float] = {}

        def on_event(e: object) -> None:
            if isinstance(e, LandscapePoints) and e.level == 1 and "preview" not in first:
                first["preview"] = time.perf_counter() - start  # level 0 (21x21) is complete

        spec = LandscapeSpec(kind="random", resolution=41, coarse=21, data="owner", images=500)
        compute_landscape(log, spec, on_event)
        full = time.perf_counter() - start
        ctx = load_context(log)
        spec = spec.resolved(ctx.stages_with_weights())
        ctx.model.load_state_dict(ctx.state(spec.center))
        ev = make_evaluator(ctx, spec)
        points = points_from_store(ctx, log, spec.name)
        n_samples = len(ev.labels)

        def rate(fn, reps: int) -> float:  # noqa: ANN001
            fn(0)
            s = time.perf_counter()
            for k in range(reps):
                fn(k)
            return reps * n_samples / (time.perf_counter() - s)

        buf = torch.empty(ev.pv.numel)
        ev_unfolded = make_evaluator(ctx, spec)
        ev_unfolded.folded, ev_unfolded.forward = None, ev_unfolded.model
        results = {}
        for _ in range(2):  # interleave twice and keep the best, to damp noise from the shared CPU
            r = {"pure forward": rate(lambda k: ev.forward_only(), args.points),
                 "grid": rate(lambda k: ev.evaluate(points.params(k, buf), points.stats(k)), args.points),
                 "grid, BatchNorm unfolded": rate(lambda k: ev_unfolded.evaluate(points.params(k, buf), points.stats(k)),
                                                  args.points),
                 "reference": reference_rate(ctx, spec, points, max(10, args.points // 3)),
                 "reference, per-sample transforms": reference_rate(ctx, spec, points, max(10, args.points // 3),
                                                                    per_sample=True)}
            results = {k: max(v, results.get(k, 0.0)) for k, v in r.items()}
        pure = results["pure forward"]
        print(f"\ndemo model (small_cnn, {sum(p.numel() for p in ctx.model.parameters())} parameters), "
              f"{n_samples} samples per point ({spec.images} clean + {n_samples - spec.images} trigger), "
              f"{args.threads} threads")
        print(f"{'loop':<36}{'samples/s':>12}{'vs pure':>10}{'vs reference':>14}")
        for name, value in results.items():
            print(f"{name:<36}{value:>12,.0f}{value / pure:>9.2f}x{value / results['reference']:>13.2f}x")
        print(f"\n21x21 preview (level 0 of a 41x41 surface, loading included): {first['preview']:.2f} s "
              f"(target < 2 s); whole 41x41 surface: {full:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
