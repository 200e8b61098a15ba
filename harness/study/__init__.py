"""The study: one sweep end to end (local or distributed, one lifecycle), the comparison of the two
methods, seed repeats, the demo, and the Python API the CLI wraps (imports: everything but cli)."""

from harness.study._compare import Comparison, run_compare
from harness.study._launch import Launch, launch
from harness.study._sweep import SweepResult, TrialRunner, run_sweep

__all__ = ["Comparison", "Launch", "SweepResult", "TrialRunner", "launch", "run_compare", "run_sweep"]
