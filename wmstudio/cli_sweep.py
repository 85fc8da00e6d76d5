"""``wmstudio sweep`` and ``wmstudio report``."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser("sweep", help="run a sweep of experiments on Ray (resumable)",
                        description="Run every combination of a sweep file's axes, sharing each watermarked model "
                                    "between the attacks on it, on a local Ray instance or a cluster.")
    sw.add_argument("sweep", help="the sweep file (TOML: [sweep], [base], [axes])")
    sw.add_argument("--out", "-o", required=True, help="the sweep folder (logs, records, report)")
    sw.add_argument("--address", help="an existing Ray cluster (e.g. auto, or head-host:6379 on a node of it); "
                                      "default: a local instance. The driver writes every file: the nodes need "
                                      "no shared filesystem")
    sw.add_argument("--workers", type=int, default=0, help="local runs at a time (default: this machine's cores)")
    add_ray_options(sw)
    sw.add_argument("--retries", type=int, default=1, help="how often a run lost with its worker or node is run "
                    "again (default 1; each loss is recorded in the run's record)")
    sw.add_argument("--shared-data", action="store_true", help="data.root (and trigger.folder, model.file, "
                    "model.checkpoint) exist at the same path on every node: workers read them there instead of "
                    "receiving the decoded data set and the files from this machine")
    sw.add_argument("--only", action="append", default=[], metavar="AXIS=VALUE",
                    help="run only the runs with this axis value (a case by its name), e.g. --only seed=\"seed 1\"; "
                         "repeatable: several values of one axis are any of them, several axes all of them. The "
                         "rest of the sweep can run later into the same folder")
    sw.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    sw.add_argument("--overwrite", action="store_true", help="run every run again, replacing what --out holds "
                    "(needed for a folder that holds another sweep)")
    rp = sub.add_parser("report", help="aggregate a sweep folder into CSV, Markdown and figures")
    rp.add_argument("folder", nargs="+", help="the sweep folder; several folders (parts of one comparison, with the "
                    "same axes) are reported together into --out")
    rp.add_argument("--out", "-o", help="where the report goes (default: the sweep folder; needed for several)")
    rp.add_argument("--refresh", action="store_true", help="re-read each finished run's final metrics from its run "
                    "log first (records written by an older version lack newer columns, e.g. the control rate)")
    rp.add_argument("--overwrite", action="store_true", help="replace report files already there (default: refuse; "
                    "`wmstudio sweep` rewrites its own report at the end)")


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resource", action="append", default=[], metavar="NAME=AMOUNT",
                        help="a custom Ray resource every task needs (repeatable), e.g. worker=1 to keep the work "
                             "on nodes started with --resources='{\"worker\": N}'")


def parse_resources(items: list[str]) -> dict[str, float]:
    """``NAME=AMOUNT`` pairs as a dict; a malformed one is a ConfigError naming ``--resource``."""
    from wmstudio.errors import ConfigError

    out: dict[str, float] = {}
    for item in items:
        name, sep, amount = item.partition("=")
        try:
            value = float(amount) if sep else 1.0
        except ValueError:
            value = float("nan")
        if not name.strip() or not value > 0 or value == float("inf"):
            raise ConfigError("--resource", f"expected NAME=AMOUNT with a positive amount, got {item!r}")
        out[name.strip()] = value
    return out


def interrupt_on_signals() -> dict[int, Any]:
    """SIGINT and SIGTERM both raise KeyboardInterrupt, so that the driver's cleanup (``ray.shutdown``) runs.

    Installed explicitly, so a driver started in the background (``cmd &``, where the shell starts it
    with SIGINT ignored) stops on SIGINT like one in the foreground. Returns the previous handlers.
    """
    def interrupt(sig: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(sig).name)

    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}


def cmd_sweep(args: argparse.Namespace) -> int:
    from wmstudio.errors import ConfigError
    from wmstudio.sweep import load_sweep, run_sweep, write_report
    from wmstudio.sweep.spec import select_runs

    spec = load_sweep(args.sweep)
    only = select_runs(spec, args.only)
    resources = parse_resources(args.resource)
    if args.address:
        from wmstudio.sweep.ray_address import check_ray_address

        check_ray_address(args.address)  # before anything is written: fails within its stated timeout
    if args.retries < 0:
        raise ConfigError("--retries", f"must be 0 or more, got {args.retries}")
    previous = interrupt_on_signals()
    try:
        summary = run_sweep(spec, args.out, args.address, args.workers, overwrite=args.overwrite,
                            resources=resources, retries=args.retries, shared_data=args.shared_data, only=only)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"sweep {spec.name!r}: {summary.finished} finished, {summary.skipped} skipped, {summary.failed} failed "
          f"of {summary.total} in {summary.seconds / 60:.1f} min")
    for run_id, error in summary.failures.items():
        print(f"  failed {run_id}: {error.splitlines()[0] if error else ''}")
    for run_id, losses in summary.retried.items():
        print(f"  {run_id} was lost {len(losses)} time(s): {losses[-1][:160]}")
    print(f"network: {summary.bytes_sent / 2**20:.1f} MiB into the object store (data sets, embed logs), "
          f"{summary.bytes_returned / 2**20:.1f} MiB of run logs streamed back")
    if not args.no_report:
        rep = write_report(args.out, overwrite=True)  # the sweep's own report, rewritten at each (resumed) sweep
        print(f"report: {rep['markdown']}, {rep['csv']}, {len(rep['figures'])} figures")
    return 0 if not summary.failures else 1


def cmd_report(args: argparse.Namespace) -> int:
    from wmstudio.errors import ConfigError
    from wmstudio.sweep import write_report

    if len(args.folder) > 1 and not args.out:
        raise ConfigError("--out", "several sweep folders are reported together into one folder; give --out DIR")
    if args.refresh:
        from wmstudio.sweep.records import refresh_finals

        for folder in args.folder:
            print(f"{folder}: {refresh_finals(folder)} records re-read from their run logs")
    if args.out and Path(args.out).resolve() not in {Path(f).resolve() for f in args.folder}:
        rep = write_report(args.out, sources=args.folder, overwrite=args.overwrite)
    else:
        rep = write_report(args.folder[0], overwrite=args.overwrite)
    print(f"{len(rep['rows'])} runs -> {rep['markdown']}, {rep['csv']}")
    if rep.get("decision"):
        print(f"decision ({rep['decision']['rule']['rule']}, declared in the sweep file): {rep['decision']['verdict']}")
        print(f"  details: {rep['decision_md']}")
    for f in rep["figures"]:
        print(f)
    return 0
