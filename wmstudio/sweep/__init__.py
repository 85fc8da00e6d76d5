"""Sweeps: the product of config axes as runs on Ray, with shared embeds, resume, and a report."""

from wmstudio.sweep.report import collect
from wmstudio.sweep.report_write import write_report
from wmstudio.sweep.runner import SweepSummary, run_sweep
from wmstudio.sweep.spec import RunPlan, SweepSpec, expand, load_sweep

__all__ = ["RunPlan", "SweepSpec", "SweepSummary", "collect", "expand", "load_sweep", "run_sweep", "write_report"]
