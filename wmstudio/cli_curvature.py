"""``wmstudio curvature``: Hessian eigenvalues, trace and density of a stage's model, into its run log."""

from __future__ import annotations

import argparse
import signal
import sys

from wmstudio.status import Status


def add_parser(sub: argparse._SubParsersAction) -> None:
    from wmstudio.curvature.spec import LOSSES, CurvatureSpec

    d = CurvatureSpec()
    c = sub.add_parser("curvature", help="Hessian curvature (top eigenvalues, trace, density) of a stage's model",
                       description="Measure the curvature of the clean or the trigger loss of one stage's model "
                                   "(whole model or one layer), print it with its estimated cost first, and store "
                                   "both in the log (the stage's curvature_json).")
    c.add_argument("log", help="the run log (HDF5)")
    c.add_argument("--stage", "-s", required=True, help="the stage whose saved model is measured")
    c.add_argument("--loss", choices=LOSSES, default=d.loss, help="clean: test images; trigger: the trigger set")
    c.add_argument("--layer", default="", help="one module's parameters only (e.g. layer1.0.conv1)")
    c.add_argument("--top-k", type=int, default=d.top_k, help="how many of the largest eigenvalues")
    c.add_argument("--probes", type=int, default=d.probes, help="Hutchinson probes for the trace (0: none)")
    c.add_argument("--density", type=int, default=d.density_probes, metavar="PROBES",
                   help="eigenvalue density by stochastic Lanczos quadrature with this many probes (0: none)")
    c.add_argument("--density-steps", type=int, default=d.density_steps, help="Lanczos steps per density probe")
    c.add_argument("--images", type=int, default=d.images, help="clean images (0: all test images)")
    c.add_argument("--max-iter", type=int, default=d.max_iter, help="Lanczos steps at most")
    c.add_argument("--tol", type=float, default=d.tol, help="relative residual at which Lanczos stops")
    c.add_argument("--seed", type=int, default=d.seed)
    c.add_argument("--batch-size", type=int, default=d.batch_size, help="images per pass")
    c.add_argument("--device", default="auto")
    c.add_argument("--trust", action="store_true", help="import the Python model file (model.file) the log's "
                   "config names; refused otherwise, since a log may come from someone else (docs/checkpoints.md)")
    c.add_argument("--quiet", "-q", action="store_true")


def cmd_curvature(args: argparse.Namespace) -> int:
    from wmstudio.control import RunControl
    from wmstudio.curvature.job import CostEstimate, CurvatureSpec, summary
    from wmstudio.curvature.of_log import curvature_of_log
    from wmstudio.errors import Cancelled
    from wmstudio.events import CurvatureFinished, CurvatureProgress, Event

    spec = CurvatureSpec(loss=args.loss, layer=args.layer, top_k=args.top_k, probes=args.probes,
                         density_probes=args.density, density_steps=args.density_steps, images=args.images,
                         max_iter=args.max_iter, tol=args.tol, seed=args.seed, batch_size=args.batch_size)
    spec.check()
    control = RunControl()
    last = {"phase": ""}

    def on_event(e: Event) -> None:
        if args.quiet:
            return
        if isinstance(e, CurvatureProgress) and e.phase != last["phase"]:
            last["phase"] = e.phase
            print(f"  {e.phase} ...", flush=True)
        elif isinstance(e, CurvatureFinished) and e.status != Status.FINISHED:
            print(f"curvature {e.stage} {e.key}: {e.status}" + (f" ({e.message})" if e.message else ""))

    def on_estimate(est: CostEstimate) -> None:
        if not args.quiet:
            print(f"curvature {args.stage} {spec.key}: {est.line()}", flush=True)

    def on_sigint(_sig: int, _frame: object) -> None:
        print("\ncancelling; nothing of this measurement is stored", file=sys.stderr)
        control.cancel()

    previous = {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = curvature_of_log(args.log, args.stage, spec, args.device, args.trust, on_event, control, on_estimate)
    except Cancelled:
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"curvature {args.stage} {spec.key}: {summary(result)}")
    return 0
