"""keras-tuner as sweeps use it: the tracked tuner (one MLflow child run per trial), the oracles,
resuming, the sweep context every process shares, and keras-tuner's internals in one place
(imports: training, tracking, config, errors)."""

from harness.tuning._context import SweepContext, open_context
from harness.tuning._oracles import make_oracle
from harness.tuning._resume import claim, sweep_key
from harness.tuning._tuner import TrackedTuner, TrialRecord

__all__ = ["SweepContext", "TrackedTuner", "TrialRecord", "claim", "make_oracle", "open_context", "sweep_key"]
