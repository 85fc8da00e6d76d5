"""bf16 and int8 against the fp32 limit, side by side in one run (issue 27).

For the CIFAR-10 ResNet-20 (the shipped base model base:cifar10_resnet20 with a content trigger embedded
in 2 short epochs: a realistic, watermarked model) and the demo model (small_cnn on digits), over the same clean
(owner) + trigger images a point:

  pure forward fp32, best   the fastest fp32 eager forward pass: NCHW / channels-last x BatchNorm
                            unfolded / folded x batch sizes (bench_landscape_resnet.pure_limit, no compile)
  pure forward bf16         that variant under torch.autocast("cpu", dtype=torch.bfloat16)
  grid, precision auto      compute_landscape(precision="auto") from LandscapeStarted to LandscapeFinished:
                            set-up, the bf16 check (centre + 3 points in both precisions), every point
  grid, its points alone    the same grid's points after the first chunk (set-up and check left out),
                            and the whole command projected to a 41x41 grid (set-up + check paid once)
  grid, precision fp32      the same grid in fp32
  Li et al.-style loop      bench_landscape_resnet.li_rate: state_dict -> load_state_dict -> DataLoader
                            with per-image PIL -> ToTensor -> Normalize -> the plain model

Then training throughput on ResNet-20 (forward + backward + SGD step, channels-last, batch 256, random
32x32 images), fp32 against bf16 autocast, in interleaved rounds; and int8 for evaluation: dynamic
quantisation (torch.ao quantize_dynamic: the Linear layers) and static post-training quantisation
(FX graph mode, x86/oneDNN backend, calibrated on 256 images) of the trained ResNet-20, each with its
forward rate and its error against fp32 (clean loss relative, accuracy absolute), plus the cost of
re-quantising the model once (a landscape would pay it at every point, the weights change).

Figures are images/s; the machine may be shared, so only the ratios taken in the same run count
(``--threads 1 --clock cpu`` times by this process's CPU time instead: images per CPU-second, fair
on a busy machine). Run:
    nice -n 15 .venv/bin/python benchmarks/bench_precision.py [--clean 2000] [--resolution 11] [--li-points 3]
Targets: ResNet-20 grid at auto >= 1.6x the best fp32 pure forward and >= 3x the Li et al.-style loop.
Skips the ResNet-20 part with a reason when ../shared/data/cifar10-jpg.tar.gz is absent.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_landscape_resnet as resnet_bench  # noqa: E402

from wmstudio.config_io import load_config  # noqa: E402
from wmstudio.events import LandscapeFinished, LandscapePoints, LandscapeStarted  # noqa: E402
from wmstudio.landscape import LandscapeSpec, batchsize, compute_landscape  # noqa: E402
from wmstudio.landscape.context import load_context  # noqa: E402
from wmstudio.landscape.fold import fold_batchnorm  # noqa: E402
from wmstudio.landscape.point_work import make_evaluator  # noqa: E402
from wmstudio.models import build_model  # noqa: E402
from wmstudio.pipeline import run_experiment  # noqa: E402
from wmstudio.precision import bf16_fast  # noqa: E402
from wmstudio.resources import example_config  # noqa: E402

TRIGGER = 100


def resnet_log(out: Path, clean: int, epochs: int, threads: int) -> Path:
    """A watermarked ResNet-20 on CIFAR-10: the shipped base model (base:cifar10_resnet20, 85.9% test
    accuracy) with a content trigger embedded in ``epochs`` short epochs on ``clean`` owner images of the
    base's own split (bf16 steps where fast). A realistic model: a briefly trained one (25% accurate)
    has many near-tied predictions that flip with any rounding, which is not what a user's model is."""
    cfg = load_config(data={
        "run": {"name": "bench precision resnet20", "threads": threads, "eval_batch_size": 500,
                "precision": "bf16" if bf16_fast(torch.device("cpu"))[0] else "fp32"},
        "data": {"dataset": "imagefolder", "root": str(resnet_bench.CIFAR), "split_seed": 0,
                 "owner_size": clean, "attacker_size": 15000, "test_size": 500},
        "model": {"arch": "resnet20", "checkpoint": "base:cifar10_resnet20"},
        "trigger": {"scheme": "content", "size": TRIGGER},
        "embed": {"epochs": epochs, "lr": 0.01, "batch_size": 128},
        "finetune": {"epochs": 0}, "restore": {"epochs": 0},
    })
    run_experiment(cfg, out)
    return out


def demo_log(out: Path, threads: int) -> Path:
    run_experiment(load_config(example_config("demo"), [f"run.threads={threads}"]), out)
    return out


def grid(log: Path, resolution: int, clean: int, precision: str) -> dict[str, object]:
    """compute_landscape at ``precision``: the whole command's rate, the rate of its points alone and the
    whole command projected to 41x41; with the precision chosen and the reason."""
    marks: dict[str, float] = {}

    def on_event(e: object) -> None:
        if isinstance(e, LandscapeStarted):
            marks["start"] = time.perf_counter()
        elif isinstance(e, LandscapePoints) and "first" not in marks:
            marks["first"], marks["first_n"] = time.perf_counter(), len(e.indices)
        elif isinstance(e, LandscapeFinished):
            marks["end"] = time.perf_counter()

    spec = LandscapeSpec(kind="random", name=f"{precision}{time.monotonic_ns()}", resolution=resolution,
                         images=clean, data="owner", precision=precision)
    ls = compute_landscape(log, spec, on_event)
    n_img = min(clean, len(load_context(log).owner)) + TRIGGER
    points = resolution * resolution
    seconds = marks["end"] - marks["start"]
    later = points - marks["first_n"]
    per_point = (marks["end"] - marks["first"]) / later
    fixed = max(0.0, (marks["first"] - marks["start"]) - marks["first_n"] * per_point)  # set-up + check
    return {"rate": points * n_img / seconds, "steady": n_img / per_point,
            "projected_41": 41 * 41 * n_img / (fixed + 41 * 41 * per_point), "fixed_s": fixed,
            "precision": ls.attrs.get("eval_precision"), "reason": ls.attrs.get("eval_precision_reason"),
            "check": ls.attrs.get("eval_precision_check"), "name": spec.name, "seconds": seconds}


def bf16_pure(model: nn.Module, x: torch.Tensor, bs: int) -> float:
    """Images/s of the channels-last, folded model under bf16 autocast at batch ``bs``."""
    model.to(memory_format=torch.channels_last)
    folded = fold_batchnorm(model, torch.channels_last)
    fwd = folded.module if folded is not None else model
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return resnet_bench.pass_rate(fwd, xc, bs)


def li_rate(log: Path, name: str, make_model: Callable[[], nn.Module], n_points: int, clean: int) -> float:
    """bench_landscape_resnet.li_rate for any image size and channel count (1-channel images go to PIL as 2D)."""
    orig_clean, orig_init = resnet_bench.CLEAN, resnet_bench.CIFAR10Like.__init__

    def init(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:  # noqa: ANN001
        orig_init(self, images, labels, transform)
        if self.data.shape[-1] == 1:
            self.data = self.data[..., 0]

    resnet_bench.CLEAN, resnet_bench.CIFAR10Like.__init__ = clean, init
    try:
        return resnet_bench.li_rate(log, name, make_model, n_points)
    finally:
        resnet_bench.CLEAN, resnet_bench.CIFAR10Like.__init__ = orig_clean, orig_init


def metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 500) -> tuple[float, float]:
    loss, correct = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(x), bs):
            out = model(x[s:s + bs]).float()
            loss += float(F.cross_entropy(out, y[s:s + bs], reduction="sum"))
            correct += int((out.argmax(1) == y[s:s + bs]).sum())
    return loss / len(x), correct / len(x)


def bench_eval(title: str, log: Path, make_model: Callable[[], nn.Module], args: argparse.Namespace) -> dict:
    ctx = load_context(log)
    ctx.model.load_state_dict(ctx.state("restore"))
    n = min(args.clean, len(ctx.owner))
    x = ctx.normalizer(torch.cat([ctx.owner.images[:n], ctx.trigger_images])).contiguous()
    print(f"\n== {title}: {n} clean + {TRIGGER} trigger images a point, {args.resolution}x{args.resolution} grid, "
          f"{torch.get_num_threads()} threads", flush=True)
    make_evaluator(ctx, LandscapeSpec(images=n, data="owner"))  # the batch-size probe, cached for both grids
    auto = grid(log, args.resolution, n, "auto")
    print(f"    grid auto: {auto['rate']:,.0f} images/s ({auto['precision']}: {auto['reason']})", flush=True)
    pure, setting, lines = resnet_bench.pure_limit(copy.deepcopy(ctx.model), x, False)
    print(f"    pure forward fp32, best: {pure:,.0f} images/s ({setting})", flush=True)
    fp32 = grid(log, args.resolution, n, "fp32")
    print(f"    grid fp32: {fp32['rate']:,.0f} images/s", flush=True)
    bf16 = bf16_pure(copy.deepcopy(ctx.model), x, int(setting.rsplit(" ", 1)[-1]))
    li = li_rate(log, auto["name"], make_model, args.li_points, n)  # type: ignore[arg-type]
    print(f"    Li et al.-style: {li:,.0f} images/s", flush=True)
    print(f"\n== {title}: summary")
    print(f"  pure forward fp32, best     {pure:>9,.0f} images/s   ({setting})")
    print(f"  pure forward bf16           {bf16:>9,.0f} images/s   {bf16 / pure:.2f}x fp32 (channels-last, folded)")
    print(f"  grid, precision auto        {auto['rate']:>9,.0f} images/s   {auto['rate'] / pure:.2f}x pure fp32 "
          f"(target >= 1.6), {auto['rate'] / li:.2f}x Li et al. (target >= 3); chose {auto['precision']}")
    print(f"    its points alone          {auto['steady']:>9,.0f} images/s   {auto['steady'] / pure:.2f}x pure fp32; "
          f"set-up + check {auto['fixed_s']:.1f} s")
    print(f"    projected to 41x41        {auto['projected_41']:>9,.0f} images/s   "
          f"{auto['projected_41'] / pure:.2f}x pure fp32, {auto['projected_41'] / li:.2f}x Li et al.")
    print(f"  grid, precision fp32        {fp32['rate']:>9,.0f} images/s   {fp32['rate'] / pure:.2f}x pure fp32 "
          f"(points alone {fp32['steady']:,.0f}, {fp32['steady'] / pure:.2f}x)")
    print(f"  Li et al.-style loop        {li:>9,.0f} images/s   ({args.li_points} points)")
    print(f"  auto's choice: {auto['precision']} ({auto['reason']})")
    for r in auto["check"] or []:  # type: ignore[union-attr]
        print(f"    point {r['index']:>3}: test loss fp32 {r['test_loss_fp32']:.5f} bf16 {r['test_loss_bf16']:.5f} "
              f"({(r['test_loss_bf16'] - r['test_loss_fp32']) / r['test_loss_fp32']:+.3%}), test acc "
              f"{r['test_acc_fp32']:.4f} / {r['test_acc_bf16']:.4f}; right only in bf16 {r['test_acc_up']}, "
              f"only in fp32 {r['test_acc_down']}")
    return {"pure_fp32": pure, "pure_bf16": bf16, "grid_auto": auto["rate"], "grid_auto_steady": auto["steady"],
            "grid_auto_41": auto["projected_41"], "grid_fp32": fp32["rate"], "li": li,
            "precision": auto["precision"]}


def train_rates(steps: int, rounds: int) -> tuple[float, float]:
    """Images/s of ResNet-20 training steps (channels-last, batch 256), fp32 and bf16 autocast, best of
    interleaved rounds (fp32 master weights and SGD state in both)."""
    best = {"fp32": 0.0, "bf16": 0.0}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (256,), generator=g)
    for _ in range(rounds):
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            model = build_model("resnet20", 3, 10, 32).to(memory_format=torch.channels_last).train()
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

            def step() -> None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):  # noqa: B023
                    loss = F.cross_entropy(model(x), y)  # noqa: B023
                opt.zero_grad(set_to_none=True)  # noqa: B023
                loss.backward()
                opt.step()  # noqa: B023

            step()  # warm-up
            t = time.perf_counter()
            for _ in range(steps):
                step()
            best[precision] = max(best[precision], steps * 256 / (time.perf_counter() - t))
    return best["fp32"], best["bf16"]


def int8_rows(log: Path, clean: int) -> list[str]:
    """Dynamic and static int8 of the run's model: forward rate and error against fp32 at the model."""
    import warnings

    from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    warnings.filterwarnings("ignore")
    ctx = load_context(log)
    n = min(clean, len(ctx.owner))
    x = ctx.normalizer(torch.cat([ctx.owner.images[:n], ctx.trigger_images])).contiguous()
    y = torch.cat([ctx.owner.labels[:n], ctx.trigger_labels])
    xc, yc = x[:n], y[:n]
    plain = build_model("resnet20", 3, 10, 32)
    plain.load_state_dict(ctx.state("restore"))
    plain.eval()
    ref_loss, ref_acc = metrics(plain, xc, yc)
    fp32_rate = resnet_bench.pass_rate(plain, x, 256)
    rows = [f"  fp32 (NCHW, unfolded, batch 256)  {fp32_rate:>8,.0f} images/s; clean loss {ref_loss:.5f}, "
            f"acc {ref_acc:.4f}"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bl, ba = metrics(plain, xc, yc)
        brate = resnet_bench.pass_rate(plain, x, 256)
    rows.append(f"  bf16 autocast (same model)        {brate:>8,.0f} images/s ({brate / fp32_rate:.2f}x); loss "
                f"{(bl - ref_loss) / ref_loss:+.3%}, acc {ba - ref_acc:+.4f}")
    t = time.perf_counter()
    dyn = quantize_dynamic(copy.deepcopy(plain), {nn.Linear}, dtype=torch.qint8)
    dyn_s = time.perf_counter() - t
    dl, da = metrics(dyn, xc, yc)
    drate = resnet_bench.pass_rate(dyn, x, 256)
    rows.append(f"  int8 dynamic (Linear layers only) {drate:>8,.0f} images/s ({drate / fp32_rate:.2f}x); loss "
                f"{(dl - ref_loss) / ref_loss:+.3%}, acc {da - ref_acc:+.4f}; quantising {dyn_s:.2f} s")
    for engine in ("x86", "onednn"):
        if engine not in torch.backends.quantized.supported_engines:
            rows.append(f"  int8 static ({engine}): engine not available in this PyTorch build")
            continue
        torch.backends.quantized.engine = engine
        try:
            t = time.perf_counter()
            prepared = prepare_fx(copy.deepcopy(plain), get_default_qconfig_mapping(engine), (x[:8],))
            with torch.inference_mode():
                for s in range(0, 256, 64):
                    prepared(xc[s:s + 64])
            q = convert_fx(prepared)
            q_s = time.perf_counter() - t
            ql, qa = metrics(q, xc, yc)
            qrate = resnet_bench.pass_rate(q, x, 256)
            rows.append(f"  int8 static ({engine}, FX)         {qrate:>8,.0f} images/s ({qrate / fp32_rate:.2f}x); "
                        f"loss {(ql - ref_loss) / ref_loss:+.3%}, acc {qa - ref_acc:+.4f}; prepare + calibrate + "
                        f"convert {q_s:.2f} s (per landscape point)")
        except Exception as exc:  # noqa: BLE001 - report what this build cannot do
            rows.append(f"  int8 static ({engine}): failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", type=int, default=2000, help="clean (owner) images a point")
    ap.add_argument("--resolution", type=int, default=11, help="grid points per axis (the 11x11 grid of issue 16)")
    ap.add_argument("--li-points", type=int, default=3, help="points of the Li et al.-style loop")
    ap.add_argument("--train-epochs", type=int, default=2, help="epochs embedding the trigger into the shipped ResNet-20 base before the landscape")
    ap.add_argument("--train-steps", type=int, default=5, help="training steps a round of the throughput figure")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time everything by this process's CPU time (with --threads 1, the work done, "
                         "whatever else runs on the machine)")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: resnet, demo, train, int8")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if args.threads != 1:
            ap.error("--clock cpu needs --threads 1 (CPU time of several threads is not elapsed work)")
        time.perf_counter = time.process_time  # every timing below, the evaluator's batch probe included
        print("timing by CPU time of this process (images per CPU-second)")
    fast, why = bf16_fast(torch.device("cpu"))
    print(f"bf16 on this CPU: {'fast' if fast else 'not fast'} ({why}); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    batchsize.CACHE_FILE = f"bench_precision_batch_sizes.{os.getpid()}.json"
    tmp = Path(tempfile.mkdtemp())
    out: dict[str, object] = {}
    try:
        have_cifar = resnet_bench.CIFAR.is_file()
        if not have_cifar:
            print(f"ResNet-20 parts skipped: the CIFAR-10 archive {resnet_bench.CIFAR} is not there")
        if have_cifar and ({"resnet", "int8"} - skip):
            t = time.perf_counter()
            reg = resnet_log(tmp / "resnet20.h5", args.clean, args.train_epochs, args.threads)
            print(f"ResNet-20 run (base:cifar10_resnet20 + {args.train_epochs} embedding epochs on {args.clean} images): {time.perf_counter() - t:.0f} s",
                  flush=True)
            if "resnet" not in skip:
                out["resnet20"] = bench_eval("ResNet-20 (CIFAR-10)", reg, lambda: build_model("resnet20", 3, 10, 32),
                                             args)
        if "demo" not in skip:
            demo = demo_log(tmp / "demo.h5", args.threads)
            cfg = load_context(demo).cfg
            out["demo"] = bench_eval("demo model (small_cnn, digits)", demo,
                                     lambda: build_model(cfg.model.arch, 1, 10, 8, cfg.model.options), args)
        if "train" not in skip:
            f32, b16 = train_rates(args.train_steps, 2)
            print("\n== ResNet-20 training steps (forward + backward + SGD, channels-last, batch 256)")
            print(f"  fp32 {f32:,.0f} images/s, bf16 autocast {b16:,.0f} images/s: {b16 / f32:.2f}x")
            out["train"] = {"fp32": f32, "bf16": b16}
        if have_cifar and "int8" not in skip:
            print("\n== int8 for evaluation (ResNet-20, at the trained model; error against fp32 on the clean images)")
            print("\n".join(int8_rows(tmp / "resnet20.h5", args.clean)))
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
        print(json.dumps({k: ({m: (round(v) if isinstance(v, float) else v) for m, v in r.items()}
                              if isinstance(r, dict) else r) for k, r in out.items()}))
    finally:
        from wmstudio.data.imagefolder import default_cache_dir

        (default_cache_dir() / batchsize.CACHE_FILE).unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
