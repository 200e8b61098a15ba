"""`harness study`: the tutorial's whole study, both sweeps on the same data and cache then their
comparison, resumable: a sweep this store already finished with the same configuration is not
run again, an interrupted one continues (as `harness sweep` does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import config as config
from harness.data._folders import scan
from harness.study._compare import Comparison, run_compare
from harness.study._sweep import SweepResult, run_sweep
from harness.tracking import Tracker, experiments, reading, resolve_store
from harness.tuning._resume import sweep_key


@dataclass
class StudyResult:
    """The sweeps run now, the finished ones found instead (method -> parent run), the comparison."""

    ran: list[SweepResult]
    found: dict[str, str] = field(default_factory=dict)
    comparison: Comparison | None = None


def finished_sweep(cfg: config.SweepConfig, tracking_uri: str | None) -> str | None:
    """The parent run of a FINISHED sweep of exactly this configuration (its `sweep_key`), if any."""
    tracker = Tracker(resolve_store(tracking_uri))
    experiment_id = experiments.find(tracker, cfg.experiment_name)
    if experiment_id is None:
        return None
    key = sweep_key(cfg, scan(cfg.data).fingerprint)
    parents = reading.find_runs(tracker, experiment_id, {"sweep_key": key})
    return next((p.run_id for p in parents if p.status == "FINISHED" and "mlflow.parentRunId" not in p.tags), None)


def run_study(tracking_uri: str | None = None, reporter=None, sweep_file: Path | None = None,
              settings: dict[str, Any] | None = None, repeats: int = 0) -> StudyResult:
    """Both methods with the same settings (`data=` among them; a sweep file without `method`,
    flags over it), then `compare`."""
    cfgs = {m: config.load(sweep_file, m, settings) for m in config.METHODS}
    result = StudyResult([])
    for method, cfg in cfgs.items():  # every configuration checked above, before the first sweep runs
        done = finished_sweep(cfg, tracking_uri)
        if done:
            result.found[method] = done
        else:
            result.ran.append(run_sweep(cfg, tracking_uri, reporter))
    result.comparison = run_compare(tracking_uri, cfgs["fine-tune"].experiment_name, repeats)
    return result
