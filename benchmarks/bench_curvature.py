"""Curvature speed: Hessian-vector products per second and time to the top eigenvalue, ResNet-20 on CIFAR-10.

The registry's ``resnet20`` (initial weights, eval mode) on the first ``--images`` CIFAR-10 test images
from ../shared/data/cifar10-jpg.tar.gz, read through the project's ImageFolder loader (random images
of the same shape, said so in the output, when the archive is absent). Side by side:

  plain loop     the usual double-backward: per product, for each batch a forward pass, the loss,
                 ``autograd.grad(create_graph=True)``, the dot product with v, ``autograd.grad``
                 again (as in PyHessian's ``dataloader_hv_product``)
  wmstudio       ``wmstudio.curvature.hvp.LossHVP`` as a job uses it (``prepare``: the first
                 gradient's graph kept when it fits the memory, so a product is one backward pass
                 through it), and rebuilt per product (``keep_graph=False``) for comparison
  top eigenvalue power iteration on the plain loop (relative change < tol, as PyHessian stops)
                 against Lanczos (``top_eigenvalues``, residual bound < tol) on wmstudio's products

Run (nice, on a shared machine):
    nice -n 15 .venv/bin/python benchmarks/bench_curvature.py [--images 1000] [--products 5] [--tol 1e-3]
Target: wmstudio's products at least as fast as the plain loop.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from wmstudio.curvature.eigen import top_eigenvalues
from wmstudio.curvature.hvp import LossHVP
from wmstudio.curvature.job import CurvatureSpec, prepare
from wmstudio.data.batches import Normalizer
from wmstudio.device import resolve_device
from wmstudio.models import build_model

ROOT = Path(__file__).resolve().parents[1]
CLOCK = [time.perf_counter]  # --clock cpu: process time (a machine shared with other work, CPU device)
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def cifar_images(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, str]:
    if CIFAR.is_file():
        from wmstudio.data import load_dataset

        data = load_dataset("imagefolder", str(CIFAR), False, 0, None, 0)
        x, y = data.test.images[:n], data.test.labels[:n]
        source = f"{len(y)} CIFAR-10 test images from {CIFAR.name}"
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        y = torch.randint(0, 10, (n,), generator=g)
        source = f"{n} RANDOM images (no {CIFAR} here)"
    norm = Normalizer((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    return norm(x.to(device)), y.to(device), source


def plain_hvp(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, v: list[torch.Tensor], bs: int
              ) -> list[torch.Tensor]:
    """The usual double-backward loop over batches (weighted by batch size, like a mean over the data)."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = [torch.zeros_like(p) for p in params]
    n = len(y)
    for s in range(0, n, bs):
        xb, yb = x[s:s + bs], y[s:s + bs]
        loss = F.cross_entropy(model(xb), yb)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * vi).sum() for g, vi in zip(grads, v, strict=True))
        hv = torch.autograd.grad(dot, params)
        for o, h in zip(out, hv, strict=True):
            o += h * (len(yb) / n)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(fn, reps: int, device: torch.device) -> float:  # noqa: ANN001
    fn()  # warm-up (and, for a kept graph, its build)
    sync(device)
    t0 = CLOCK[0]()
    for _ in range(reps):
        fn()
    sync(device)
    return reps / (CLOCK[0]() - t0)


def power_iteration(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int, tol: float, max_iter: int,
                    seed: int = 0) -> tuple[float, int]:
    params = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g).to(p.device) for p in params]
    value = None
    for it in range(1, max_iter + 1):
        norm = torch.sqrt(sum((t * t).sum() for t in v))
        v = [t / norm for t in v]
        hv = plain_hvp(model, x, y, v, bs)
        new = float(sum((h * t).sum() for h, t in zip(hv, v, strict=True)))
        v = [h.detach() for h in hv]
        if value is not None and abs(new - value) <= tol * abs(value):
            return new, it
        value = new
    return float(value), max_iter


def rates(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, hvp: LossHVP, v: torch.Tensor,
          v_list: list[torch.Tensor], args: argparse.Namespace, device: torch.device, kept: bool) -> None:
    rebuilt = LossHVP(model, x, y, batch_size=args.batch_size, keep_graph=False)
    # the same product, three ways
    a = torch.cat([t.reshape(-1) for t in plain_hvp(model, x, y, v_list, args.batch_size)])
    err = max(float((hvp(v) - a).norm() / a.norm()), float((rebuilt(v) - a).norm() / a.norm()))
    print(f"agreement with the plain loop: relative difference {err:.1e}")
    r_plain = rate(lambda: plain_hvp(model, x, y, v_list, args.batch_size), args.products, device)
    r_rebuilt = rate(lambda: rebuilt(v), args.products, device)
    r_kept = rate(lambda: hvp(v), args.products, device)
    print(f"{'Hessian-vector products/s':32s}{'plain loop':>12s}{'wmstudio':>12s}{'ratio':>8s}")
    print(f"{'  graph rebuilt per product':32s}{r_plain:12.3f}{r_rebuilt:12.3f}{r_rebuilt / r_plain:7.2f}x")
    print(f"{'  as a job runs it' + (' (graph kept)' if kept else ''):32s}{r_plain:12.3f}{r_kept:12.3f}"
          f"{r_kept / r_plain:7.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--products", type=int, default=5, help="timed products per variant")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--skip-eigen", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: this process's CPU time instead of wall time (fair on a busy machine; CPU device only)")
    ap.add_argument("--skip-rates", action="store_true", help="only the time to the top eigenvalue")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    device = resolve_device(args.device)
    x, y, source = cifar_images(args.images, device)
    model = build_model("resnet20", 3, 10, 32, {}).to(device).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"resnet20 ({n_params:,} parameters) on {source}, batch {args.batch_size}, {device}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock")
    spec = CurvatureSpec(images=args.images, batch_size=args.batch_size, tol=args.tol, max_iter=args.max_iter, probes=0)
    hvp, est = prepare(model, x, y, spec)
    print(est.line())
    dim = hvp.dim
    v = torch.randn(dim, generator=torch.Generator().manual_seed(1)).to(device)
    v_list = [t.view_as(p) for t, p in zip(v.split([p.numel() for p in hvp.params]), hvp.params, strict=True)]
    if not args.skip_rates:
        rates(model, x, y, hvp, v, v_list, args, device, est.keep_graph)
    if args.skip_eigen:
        return
    sync(device)
    t0 = CLOCK[0]()
    lam_p, it_p = power_iteration(model, x, y, args.batch_size, args.tol, args.max_iter)
    sync(device)
    t_power = CLOCK[0]() - t0
    hvp.release()
    t0 = CLOCK[0]()
    hvp2, _ = prepare(model, x, y, spec, keep_graph=est.keep_graph)
    eig = top_eigenvalues(hvp2, dim, 1, args.max_iter, args.tol, 0, device=device)
    sync(device)
    t_lanczos = CLOCK[0]() - t0  # the estimate's timing included
    print(f"{'time to the top eigenvalue':32s}{'power/plain':>12s}{'Lanczos/wm':>12s}{'ratio':>8s}")
    print(f"{'  seconds':32s}{t_power:12.2f}{t_lanczos:12.2f}{t_power / t_lanczos:7.2f}x")
    print(f"{'  products':32s}{it_p:12d}{eig.iterations:12d}")
    print(f"{'  top eigenvalue':32s}{lam_p:12.5g}{eig.values[0]:12.5g}  (Lanczos converged: {eig.converged}, "
          f"residual bound {eig.residuals[0]:.2g})")


if __name__ == "__main__":
    main()
