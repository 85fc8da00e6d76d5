"""``wmstudio landscape`` and ``wmstudio export``: compute surfaces into a log, draw stored ones."""

from __future__ import annotations

import argparse
import signal
import sys

from wmstudio.status import Status

FIGURE_FORMATS = ("png", "svg", "pdf")
MESH_FORMATS = ("vts", "vtu", "vtp", "obj", "glb")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from wmstudio.landscape.spec import (
        BN_MODES,
        DIR_TYPES,
        KINDS,
        LOSSES,
        METRICS,
        PRECISIONS,
        LandscapeSpec,
    )

    d = LandscapeSpec()
    ls = sub.add_parser("landscape", help="compute a loss landscape into a run log (resumable)",
                        description="Compute a 1D path, 2D plane, PCA plane, random-direction surface, the plane "
                                    "(or path) of the top Hessian eigenvectors, or the plane of the attack and "
                                    "restoration displacements of a run's models, or train a connecting curve between two stages, storing clean and trigger "
                                    "loss/accuracy per point in the log.")
    ls.add_argument("log", help="the run log (HDF5)")
    ls.add_argument("--kind", choices=KINDS, default=d.kind,
                    help="plane: through 3 checkpoints; line: the path through checkpoints; random: two filter-"
                         "normalised random directions; pca: principal directions of the trajectories; hessian: "
                         "the top two Hessian eigenvectors at the centre (hessian_line: the top one); displacement: "
                         "the attack (finetune - embed) and restoration (restore - finetune) displacements; curve: a "
                         "Bezier curve with one trained bend between two stages (--models, default embed,finetune), "
                         "next to the straight segment (Garipov et al.)")
    ls.add_argument("--preset", choices=("published",), help="published: the PCA plane of the fine-tuning and "
                    "restoration checkpoints centred on the restored model (overrides --kind/--models/--center)")
    ls.add_argument("--name", default="", help="group name under /landscapes (default: the kind)")
    ls.add_argument("--models", default="", help="comma-separated stages: the checkpoints (plane: 3, line: 2+), "
                                                 "for pca the stages whose trajectories span the plane, for "
                                                 "displacement the watermarked, attacked and restored stages "
                                                 "(default embed,finetune,restore)")
    ls.add_argument("--center", default="", help="random/pca/hessian/hessian_line: the stage at the centre (default: "
                                                 "the last one); displacement: one of its stages (default: the "
                                                 "attacked one)")
    ls.add_argument("--resolution", type=int, default=d.resolution, help="points per axis (per segment for line)")
    ls.add_argument("--span", type=float, default=d.span, help="random/hessian/hessian_line: the grid covers "
                                                                "[-span, span] (hessian: parameter-space distance)")
    ls.add_argument("--margin", type=float, default=d.margin, help="plane/pca: border around the models, as a "
                                                                    "fraction of their extent; line: extension")
    ls.add_argument("--seed", type=int, default=d.seed, help="random directions' seed")
    ls.add_argument("--norm", choices=("filter", "layer", "none"), default=d.norm)
    ls.add_argument("--bias-bn", choices=("ignore", "include"), default=d.bias_bn)
    ls.add_argument("--dir-type", choices=DIR_TYPES, default=d.dir_type,
                    help="random: states also moves the BatchNorm running statistics (Li et al.'s dir_type=states: "
                         "each statistic's direction is the statistic itself)")
    ls.add_argument("--loss", choices=LOSSES, default=d.loss,
                    help="hessian/hessian_line: the loss whose Hessian gives the directions (clean: the --data set)")
    ls.add_argument("--hessian-images", type=int, default=d.hessian_images,
                    help="hessian kinds, clean loss: images of the clean set in the loss (0 = all)")
    ls.add_argument("--hessian-iter", type=int, default=d.hessian_iter,
                    help="hessian kinds: Lanczos steps at most (one Hessian-vector product each)")
    ls.add_argument("--curve-epochs", type=int, default=d.curve_epochs,
                    help="curve: passes over the owner's data training the bend")
    ls.add_argument("--curve-lr", type=float, default=d.curve_lr, help="curve: the bend's SGD learning rate")
    ls.add_argument("--curve-batch", type=int, default=d.curve_batch, help="curve: the bend's training batch")
    ls.add_argument("--bn", choices=BN_MODES, default=d.bn,
                    help="BatchNorm statistics: the models' running ones, or re-estimated at each point")
    ls.add_argument("--data", choices=("test", "owner"), default=d.data, help="the clean set evaluated")
    ls.add_argument("--images", type=int, default=d.images, help="clean images per point (0 = all)")
    ls.add_argument("--batch-size", type=int, default=d.batch_size, help="evaluation batch (0: the fastest, measured once "
                    "per model, device and image shape and cached)")
    ls.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                    help="the clean images' forward pass: auto takes bf16 where the device has fast bf16 and the "
                         "centre and a few grid points agree with fp32 (losses within 1%%, accuracies within 0.005); "
                         "trigger metrics are always fp32")
    ls.add_argument("--workers", type=int, default=1, help="worker processes (points are independent)")
    ls.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                    help="fan the points out as Ray actors: a local instance, or the cluster at ADDRESS (model, "
                         "directions and evaluation data travel through Ray: no shared filesystem needed)")
    from wmstudio.cli_sweep import add_ray_options

    add_ray_options(ls)
    ls.add_argument("--device", default="auto")
    ls.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default, one per core), shared among "
                    "local --workers; e.g. 1 while another job uses the other cores")
    ls.add_argument("--overwrite", action="store_true", help="replace a stored landscape of the same name")
    ls.add_argument("--trust", action="store_true", help="import the Python model file (model.file) the log's "
                    "config names; refused otherwise, since a log may come from someone else (docs/checkpoints.md)")
    ls.add_argument("--quiet", "-q", action="store_true")

    ex = sub.add_parser("export", help="draw a stored landscape as PNG/SVG/PDF, or write it as VTK/OBJ for "
                                       "ParaView, Blender and the like, without recomputing",
                        description="Formats by file suffix: png, svg, pdf (figures per metric and style); vts (the "
                                    "grid with every metric as point data, one file per landscape), vtu (the same as an "
                                    "unstructured grid, for meshio), vtp (the "
                                    "trajectories as polylines), obj (a triangle mesh per metric, its colour map "
                                    "baked into the vertices; 2D landscapes).")
    ex.add_argument("log")
    ex.add_argument("--landscape", "-l", default="", help="its name (default: the only one / all of them)")
    ex.add_argument("--metric", "-m", choices=METRICS + ("all",), default="all")
    ex.add_argument("--style", choices=("contour", "surface", "both"), default="contour")
    ex.add_argument("--log-scale", action="store_true", help="log10 of the losses")
    ex.add_argument("--format", choices=FIGURE_FORMATS + MESH_FORMATS, action="append",
                    help="repeatable; default png and svg")
    ex.add_argument("--height", choices=METRICS + ("flat",), default="flat",
                    help="vts/vtu/vtp: the metric whose value is the points' z coordinate, or flat (z = 0)")
    ex.add_argument("--out", "-o", required=True, help="folder to write")
    ex.add_argument("--overwrite", action="store_true", help="replace figures already in --out (default: refuse)")


def cmd_landscape(args: argparse.Namespace) -> int:
    from wmstudio.config import MAX_THREADS, WHY_THREADS
    from wmstudio.control import RunControl
    from wmstudio.errors import ConfigError
    from wmstudio.landscape import LandscapeSpec, compute_landscape
    from wmstudio.landscape.spec import MAX_WORKERS
    from wmstudio.progress import ProgressPrinter

    spec = LandscapeSpec(kind=args.kind, name=args.name, models=[m.strip() for m in args.models.split(",") if m.strip()],
                         center=args.center, resolution=args.resolution, span=args.span, margin=args.margin,
                         seed=args.seed, norm=args.norm, bias_bn=args.bias_bn, bn=args.bn, data=args.data,
                         images=args.images, batch_size=args.batch_size,
                         precision=args.precision, dir_type=args.dir_type, loss=args.loss,
                         hessian_images=args.hessian_images, hessian_iter=args.hessian_iter,
                         curve_epochs=args.curve_epochs, curve_lr=args.curve_lr, curve_batch=args.curve_batch)
    if args.preset == "published":
        published = LandscapeSpec.published(args.resolution)
        spec.kind, spec.name, spec.models, spec.center = published.kind, args.name or published.name, \
            published.models, published.center
    spec.check()  # bounds and finite numbers, before the log is opened or anything is written
    if not 0 <= args.threads <= MAX_THREADS:
        raise ConfigError("--threads", f"must be a whole number from 0 (PyTorch's default) to {MAX_THREADS} "
                                       f"({WHY_THREADS}), got {args.threads}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigError("--workers", f"must be a whole number from 1 to {MAX_WORKERS} (each worker is a "
                                       f"process holding the model and the data), got {args.workers}")
    if not args.ray:  # local processes or a local Ray instance: at most the cores (memory: once the model is known)
        from wmstudio.landscape.worker_limit import WORKER_BASE_BYTES, check_workers

        check_workers(args.workers, WORKER_BASE_BYTES)
    else:
        from wmstudio.sweep.ray_address import check_ray_address

        check_ray_address(args.ray)  # fails within its stated timeout, before the log is opened
    target = None
    if args.ray is not None:
        from wmstudio.cli_sweep import parse_resources
        from wmstudio.landscape.distributed import RayTarget

        target = RayTarget(args.ray, parse_resources(args.resource))
    elif args.resource:
        raise ConfigError("--resource", "only applies with --ray")
    control = RunControl()

    def on_sigint(_sig: int, _frame: object) -> None:
        print("\ncancelling; the points computed so far stay in the log (rerun to resume)", file=sys.stderr)
        control.cancel()

    # SIGTERM like Ctrl-C, and both also in the background (where SIGINT starts out ignored): the workers
    # and a local Ray instance are shut down before the process ends
    previous = {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ls = compute_landscape(args.log, spec, (lambda e: None) if args.quiet else ProgressPrinter(sys.stdout), control,
                               args.device, args.workers, args.overwrite, args.threads, ray_address=target,
                               trust_code=args.trust)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.quiet:
        for k, label in (("eval_batch_size", "batch size"), ("eval_layout", "layout"), ("eval_batchnorm", "BatchNorm")):
            if k in ls.attrs:
                print(f"  {label}: {ls.attrs[k]}")
        if "eval_precision" in ls.attrs:
            from wmstudio.landscape.precision_check import precision_lines

            for line in precision_lines(ls.attrs):
                print(f"  {line}")
    if not args.quiet and "hessian_eigenvalues" in ls.attrs:
        values = ", ".join(f"{v:.4g}" for v in ls.attrs["hessian_eigenvalues"])
        state = "converged" if ls.attrs.get("hessian_converged") else "not converged"
        print(f"  Hessian of the {ls.attrs.get('hessian_loss')} loss at {ls.attrs.get('hessian_stage')}: eigenvalues "
              f"[{values}] ({ls.attrs.get('hessian_iterations')} Lanczos steps, {state})")
    if not args.quiet and "curve_loss_history" in ls.attrs:
        history = ", ".join(f"{v:.4g}" for v in ls.attrs["curve_loss_history"])
        print(f"  bend: {ls.attrs.get('curve_steps')} steps in {ls.attrs.get('curve_train_seconds')} s, training loss by "
              f"epoch [{history}]; the bend is {ls.attrs.get('bend_offset', 0):.4g} from the midpoint (ends "
              f"{ls.attrs.get('ends_distance', 0):.4g} apart)")
    if not args.quiet and ls.status == Status.FINISHED and ls.complete and ls.line_metrics:
        for m in ("test_loss", "test_acc", "trigger_loss", "trigger_acc"):
            c, s = ls.metrics[m], ls.line_metrics[m]
            worst = (c.max(), s.max()) if m.endswith("loss") else (c.min(), s.min())
            print(f"  {m}: curve mean {c.mean():.4g}, {'max' if m.endswith('loss') else 'min'} {worst[0]:.4g}; "
                  f"straight line mean {s.mean():.4g}, {'max' if m.endswith('loss') else 'min'} {worst[1]:.4g}")
    elif not args.quiet and ls.status == Status.FINISHED and ls.complete:
        for m in ("test_loss", "trigger_acc"):
            v = ls.metrics[m]
            print(f"  {m}: min {v.min():.4g}, max {v.max():.4g}")
    return 0 if ls.status == Status.FINISHED else 130


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wmstudio.errors import RunLogError
    from wmstudio.landscape import METRICS, list_landscapes, read
    from wmstudio.landscape.figures import export_figure
    from wmstudio.safe_files import check_targets

    names = [args.landscape] if args.landscape else list_landscapes(args.log)
    if not names:
        raise RunLogError(f"{args.log}: holds no landscapes; compute one with `wmstudio landscape {args.log}`")
    metrics = METRICS if args.metric == "all" else (args.metric,)
    styles = ("contour", "surface") if args.style == "both" else (args.style,)
    formats = args.format or ["png", "svg"]
    stored = [read(args.log, name) for name in names]
    out = Path(args.out)
    jobs = [(ls, metric, style, out / f"{ls.name}_{metric}_{style}.{fmt}") for ls in stored
            for metric in metrics for style in (styles if ls.is_2d else ("line",)) for fmt in formats
            if fmt in FIGURE_FORMATS]
    meshes = [(ls, "", out / f"{ls.name}.{fmt}") for ls in stored for fmt in ("vts", "vtu") if fmt in formats]
    meshes += [(ls, "", out / f"{ls.name}_trajectories.vtp") for ls in stored if "vtp" in formats]
    meshes += [(ls, metric, out / f"{ls.name}_{metric}.{fmt}") for ls in stored for fmt in ("obj", "glb")
               if fmt in formats and ls.is_2d for metric in metrics]
    check_targets([path for *_, path in jobs] + [path for *_, path in meshes], args.overwrite)  # all, first
    for ls, metric, style, path in jobs:
        export_figure(ls, metric, path, "contour" if style == "line" else style, args.log_scale,
                      overwrite=args.overwrite)
        print(path)
    if meshes:
        from wmstudio.landscape.mesh_export import export_mesh

        height = "" if args.height == "flat" else args.height
        for ls, metric, path in meshes:
            print(export_mesh(ls, path, metric, height, args.log_scale, args.overwrite))
    return 0
