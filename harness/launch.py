"""Which way a sweep command runs: in this process, as the chief of workers, or as one worker."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import SweepConfig
from harness.errors import HarnessError


@dataclass(frozen=True)
class Launch:
    """The sweep command's run-mode flags, as given."""

    resume: bool = False
    fresh: bool = False
    workers: int = 0
    role: str | None = None
    oracle: str | None = None
    parent_run: str | None = None
    connect_timeout: float = 600.0
    config_path: str = ""

    def __post_init__(self):
        if self.resume and self.fresh:
            raise HarnessError("--resume and --fresh exclude each other")

    @property
    def local(self) -> bool:
        return self.role is None and not self.workers and self.oracle is None

    @property
    def mode(self) -> str:
        return "resume" if self.resume else "fresh" if self.fresh else "auto"


def worker_oracle(how: Launch) -> str:
    if how.workers:
        raise HarnessError("--workers is for the chief; a worker is one process")
    if not how.oracle:
        raise HarnessError("--role worker needs --oracle HOST:PORT (the chief's)")
    return how.oracle


def launch(cfg: SweepConfig, tracking_uri: str | None, how: Launch, reporter):
    """Run the sweep (or this worker's share of it); a SweepResult, or a WorkerResult for a worker."""
    if how.role == "worker":
        from harness.worker import run_worker, worker_id

        return run_worker(cfg, tracking_uri, worker_oracle(how), worker_id(), how.parent_run,
                          how.connect_timeout, reporter)
    if cfg.tuner == "hyperband" and not how.local:
        raise HarnessError("--tuner hyperband runs in one process: a trial it continues starts from weights "
                           "an earlier trial saved on this machine; use random or bayesian with --workers/--role")
    if how.local:
        from harness.sweep import run_sweep

        return run_sweep(cfg, tracking_uri, reporter, how.mode)
    from harness.distributed import chief_address, run_chief

    return run_chief(cfg, tracking_uri, chief_address(how.role, how.oracle, how.workers), how.workers,
                     how.config_path, reporter)
