"""Loss-landscape speed on a real model at the compute limit: CIFAR-10 ResNet-20 on the CIFAR-10 JPEGs.

For the registry's ``resnet20`` and for the same ResNet-20 loaded from a user model file
(docs/byom/cifar_resnet.py, through model.file/model.factory), in one run, 2,000 clean (owner) +
100 trigger images a point:

  pure forward, best  the model's forward pass alone over the same 2,100 images, the fastest of
                      NCHW / channels-last x BatchNorm unfolded / folded x batch sizes 32..2100
                      (the limit), and torch.compile of the fastest eager variant: compile time and
                      steady-state rate, and the rate over a 121-point grid with the compile counted
  grid, defaults      ``compute_landscape`` at default settings (batch size 0: chosen by the probe,
                      with an empty cache so its cost is counted), from LandscapeStarted to
                      LandscapeFinished: evaluator set-up, layout check, folding, probe, every point
  Li et al.-style     a faithful copy of the loss-landscape reference loop: perturbed state_dict ->
                      load_state_dict -> DataLoader (batch 128, loader in the main process, the faster
                      of Li et al.'s settings on this machine) over a CIFAR10-style Dataset doing
                      PIL.Image.fromarray -> ToTensor -> Normalize per image -> the plain model (as
                      built, NCHW, unfolded) under no_grad

Each figure is images/s (forward samples over clean + trigger images). Run (2 threads, as the issue):
    .venv/bin/python benchmarks/bench_landscape_resnet.py [--resolution 7] [--li-points 6] [--no-compile]
Targets: grid >= 0.9x the best pure forward and >= 1.8x the Li et al.-style loop, for both models;
the batch-size choice < 2 s (or cached) and written to the landscape's log.
Skips with a reason when ../shared/data/cifar10-jpg.tar.gz is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wmstudio.config_io import load_config
from wmstudio.data.imagefolder import default_cache_dir
from wmstudio.events import LandscapeFinished, LandscapePoints, LandscapeStarted
from wmstudio.landscape import LandscapeSpec, batchsize, compute_landscape
from wmstudio.landscape.context import load_context
from wmstudio.landscape.fold import fold_batchnorm
from wmstudio.landscape.point_work import points_from_store
from wmstudio.models import build_model
from wmstudio.pipeline import run_experiment

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
USER_FILE = ROOT / "docs" / "byom" / "cifar_resnet.py"
CLEAN, TRIGGER = 2000, 100
COMPILE_GRID = 121  # the 11x11 grid, over which a compile would be paid


def make_log(out: Path, user_file: bool, threads: int) -> Path:
    """A ResNet-20 run on CIFAR-10 with its initial weights (no training: compute does not depend on them)."""
    model = {"file": str(USER_FILE), "factory": "resnet20"} if user_file else {"arch": "resnet20"}
    cfg = load_config(data={
        "run": {"name": "bench resnet20", "threads": threads, "eval_batch_size": 500},
        "data": {"dataset": "imagefolder", "root": str(CIFAR), "owner_size": CLEAN, "attacker_size": 500,
                 "test_size": 500},
        "model": model,
        "trigger": {"scheme": "content", "size": TRIGGER},
        "embed": {"epochs": 0},
        "finetune": {"epochs": 0}, "restore": {"epochs": 0},
    })
    run_experiment(cfg, out)
    return out


def pass_rate(forward: Callable[[torch.Tensor], object], x: torch.Tensor, bs: int, reps: int = 2) -> float:
    """Images/s of full passes over ``x`` in batches of ``bs`` (best of ``reps``, after one warm-up batch)."""
    with torch.inference_mode():
        forward(x[:bs])
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            for s in range(0, len(x), bs):
                forward(x[s:s + bs])
            best = min(best, time.perf_counter() - t)
    return len(x) / best


def pure_limit(model: nn.Module, x_nchw: torch.Tensor, do_compile: bool) -> tuple[float, str, list[str]]:
    """The best pure forward rate, its setting, and the lines that show the search."""
    lines, results = [], {}
    variants = {}
    for fmt, fname in ((torch.contiguous_format, "NCHW"), (torch.channels_last, "channels_last")):
        model.to(memory_format=fmt)
        folded = fold_batchnorm(model, fmt)
        x = x_nchw.contiguous(memory_format=fmt)
        variants[(fname, "unfolded")] = (model, x, fmt)
        if folded is not None:
            variants[(fname, "folded")] = (folded.module, x, fmt)
    for key, (fwd, x, fmt) in variants.items():  # layout x folding at the usual CPU size
        model.to(memory_format=fmt)
        results[(*key, 128)] = pass_rate(fwd, x, 128)
    best_key = max(results, key=results.__getitem__)
    fwd, x, fmt = variants[best_key[:2]]
    model.to(memory_format=fmt)
    for bs in (32, 64, 256, 512, 1024, len(x)):  # then every batch size for the best variant
        results[(*best_key[:2], bs)] = pass_rate(fwd, x, bs)
    print(f"    (limit search done: {len(results)} settings)", flush=True)
    for key, rate in sorted(results.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {key[0]:<14}{key[1]:<10} batch {key[2]:<6}{rate:>9,.0f} images/s")
    best_key = max(results, key=results.__getitem__)
    best, setting = results[best_key], f"{best_key[0]}, {best_key[1]}, batch {best_key[2]}"
    if do_compile:
        fwd, x, fmt = variants[best_key[:2]]
        model.to(memory_format=fmt)
        bs = best_key[2]
        try:
            t = time.perf_counter()
            compiled = torch.compile(fwd, dynamic=False)
            with torch.inference_mode():
                for s in range(0, len(x), bs):  # compiles every batch shape the pass uses
                    compiled(x[s:s + bs])
            compile_s = time.perf_counter() - t
            steady = pass_rate(compiled, x, bs)
            counted = COMPILE_GRID * len(x) / (compile_s + COMPILE_GRID * len(x) / steady)
            lines.append(f"    torch.compile ({setting}): compile {compile_s:.1f} s, steady {steady:,.0f} images/s "
                         f"({steady / best:.2f}x eager); over {COMPILE_GRID} points with the compile counted "
                         f"{counted:,.0f} images/s ({counted / best:.2f}x eager)")
            if steady > best:
                best, setting = steady, f"{setting}, torch.compile (compile time not counted)"
        except Exception as exc:  # noqa: BLE001 - no compiler on this machine: eager is the limit
            lines.append(f"    torch.compile unavailable: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return best, setting, lines


def grid_rate(log: Path, resolution: int) -> tuple[float, dict[str, str], float, str, float]:
    """compute_landscape at default settings, from start to finish, with an empty batch-size cache (a
    file of its own, removed after, so the user's cache is neither used nor changed); also the rate of
    the points after the first reported ones (set-up, probe and the first level excluded)."""
    batchsize.CACHE_FILE = f"bench_eval_batch_sizes.{os.getpid()}.json"
    marks: dict[str, float] = {}

    def on_event(e: object) -> None:
        if isinstance(e, LandscapeStarted):
            marks["start"] = time.perf_counter()
        elif isinstance(e, LandscapePoints) and "first" not in marks:
            marks["first"], marks["first_n"] = time.perf_counter(), len(e.indices)
        elif isinstance(e, LandscapeFinished):
            marks["end"] = time.perf_counter()

    spec = LandscapeSpec(kind="random", name=f"bench{time.monotonic_ns()}", resolution=resolution, span=1.0,
                         images=CLEAN, data="owner")
    try:
        ls = compute_landscape(log, spec, on_event)
    finally:
        (default_cache_dir() / batchsize.CACHE_FILE).unlink(missing_ok=True)
    seconds = marks["end"] - marks["start"]
    later = resolution * resolution - marks["first_n"]
    steady = later * (CLEAN + TRIGGER) / (marks["end"] - marks["first"]) if later else float("nan")
    return resolution * resolution * (CLEAN + TRIGGER) / seconds, ls.attrs, seconds, spec.name, steady


class CIFAR10Like(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's __getitem__: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):  # noqa: ANN204
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def li_rate(log: Path, name: str, make_model: Callable[[], nn.Module], n_points: int) -> float:
    """Li et al.'s loop over the first ``n_points`` points of the grid ``name``."""
    import torchvision.transforms as T

    ctx = load_context(log)
    points = points_from_store(ctx, log, name)
    images = torch.cat([ctx.owner.images[:CLEAN], ctx.trigger_images]).cpu()
    labels = torch.cat([ctx.owner.labels[:CLEAN], ctx.trigger_labels]).cpu()
    tf = T.Compose([T.ToTensor(), T.Normalize(ctx.normalizer.mean, ctx.normalizer.std)])
    loader = torch.utils.data.DataLoader(CIFAR10Like(images, labels, tf), batch_size=128, shuffle=False, num_workers=0)
    net = make_model()
    base = {k: v.cpu().clone() for k, v in ctx.state("restore").items()}
    names = [n for n, _ in net.named_parameters()]
    flat = torch.empty(sum(p.numel() for p in net.parameters()))
    start = time.perf_counter()
    for k in range(n_points):
        points.params(k, flat)
        sd, off = dict(base), 0
        for n in names:
            size = base[n].numel()
            sd[n] = flat[off:off + size].view_as(base[n]).clone()
            off += size
        net.load_state_dict(sd)
        net.eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for x, y in loader:
                out = net(x)
                loss += F.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
    return n_points * len(labels) / (time.perf_counter() - start)


def bench_model(title: str, log: Path, make_model: Callable[[], nn.Module], args: argparse.Namespace) -> dict[str, float]:
    ctx = load_context(log)
    ctx.model.load_state_dict(ctx.state("restore"))
    x = ctx.normalizer(torch.cat([ctx.owner.images[:CLEAN], ctx.trigger_images])).contiguous()
    print(f"\n== {title}", flush=True)
    grid, attrs, grid_s, name, steady = grid_rate(log, args.resolution)
    print(f"    grid {grid:,.0f} images/s (points after the first level {steady:,.0f}); batch size "
          f"{attrs.get('eval_batch_size')}", flush=True)
    li = li_rate(log, name, make_model, args.li_points)
    print(f"    Li et al.-style {li:,.0f} images/s", flush=True)
    pure, setting, lines = pure_limit(ctx.model, x, not args.no_compile)
    print(f"    pure forward, best {pure:,.0f} images/s", flush=True)
    grid2, attrs2, grid_s2, _, steady2 = grid_rate(log, args.resolution)  # each figure twice, interleaved (shared CPU)
    print(f"    grid {grid2:,.0f} images/s (points after the first level {steady2:,.0f}); batch size "
          f"{attrs2.get('eval_batch_size')}", flush=True)
    li = max(li, li_rate(log, name, make_model, args.li_points))
    if grid2 > grid:
        grid, attrs, grid_s, steady = grid2, attrs2, grid_s2, steady2
    n_params = sum(p.numel() for p in ctx.model.parameters())
    print(f"\n== {title}: summary: {n_params:,} parameters, {CLEAN} clean + {TRIGGER} trigger images a point, "
          f"{torch.get_num_threads()} threads")
    print(f"  pure forward, best          {pure:>9,.0f} images/s   ({setting})")
    print("\n".join(lines))
    print(f"  grid, default settings      {grid:>9,.0f} images/s   {grid / pure:.2f}x pure (target >= 0.90), "
          f"{grid / li:.2f}x Li et al. (target >= 1.80); {args.resolution}x{args.resolution} points in {grid_s:.1f} s")
    print(f"  grid, its points alone      {steady:>9,.0f} images/s   {steady / pure:.2f}x pure (set-up, the batch-size "
          "probe and the first level left out)")
    print(f"  Li et al.-style loop        {li:>9,.0f} images/s   ({args.li_points} points)")
    for k in ("eval_batch_size", "eval_layout", "eval_batchnorm"):
        print(f"  log: {k} = {attrs.get(k, '(missing)')}")
    return {"pure": pure, "grid": grid, "li": li}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=7, help="grid points per axis for the default-settings grid")
    ap.add_argument("--li-points", type=int, default=6, help="points of the Li et al.-style loop")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (its compile takes a minute or more)")
    ap.add_argument("--models", choices=("both", "registry", "user"), default="both",
                    help="which ResNet-20 to measure: the registry's, the user file's, or both (default)")
    args = ap.parse_args()
    if not CIFAR.is_file():
        print(f"skipped: the CIFAR-10 archive {CIFAR} is not there (see shared/data/README.md)")
        return
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        reg = make_log(tmp / "resnet20.h5", False, args.threads)
        user = make_log(tmp / "user_file.h5", True, args.threads)
        print(f"runs for the benchmark (data loading, no training): {time.perf_counter() - t0:.1f} s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        out = {}
        if args.models in ("both", "registry"):
            out["registry resnet20"] = bench_model("ResNet-20, registry (model.arch = resnet20)", reg,
                                                   lambda: build_model("resnet20", 3, 10, 32), args)
        if args.models in ("both", "user"):
            out["user file resnet20"] = bench_model(f"ResNet-20 from a user file ({USER_FILE.relative_to(ROOT)})", user,
                                                    lambda: build_model("", 3, 10, 32, file=str(USER_FILE),
                                                                        factory="resnet20"), args)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
        print(json.dumps({k: {m: round(v) for m, v in r.items()} for k, r in out.items()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
