"""Which way a sweep command runs: in this process, as the chief of workers, or as one worker."""

from __future__ import annotations

import os
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
    register: str | None = None  # registered model name for the winner

    def __post_init__(self):
        if self.resume and self.fresh:
            raise HarnessError("--resume and --fresh exclude each other")
        if self.register is not None and not self.register.strip():
            raise HarnessError("--register needs a model name")
        if self.register and not self.local:
            raise HarnessError("--register works with a sweep run in one process (a distributed sweep logs no "
                               "model); register its best trial's model_uri with MLflow instead")

    @property
    def local(self) -> bool:
        return self.role is None and not self.workers and self.oracle is None

    @property
    def mode(self) -> str:
        return "resume" if self.resume else "fresh" if self.fresh else "auto"


def launch_warnings(how: Launch) -> list[str]:
    """Lines the user should read before a chief opens its oracle port to the network."""
    from harness.distributed._oracle_service import TOKEN_ENV
    from harness.servers import is_loopback

    if how.role != "chief" or not how.oracle:
        return []
    host, _, port = how.oracle.rpartition(":")
    if is_loopback(host):
        return []
    if os.environ.get(TOKEN_ENV):
        guard = f"calls must carry {TOKEN_ENV}, but travel unencrypted"
    else:
        guard = f"anyone who reaches it can take part (set {TOKEN_ENV} to one secret on the chief and every worker)"
    return [f"warning: the chief's oracle listens on {how.oracle}; keras-tuner's gRPC service has no login and "
            f"{guard}: keep port {port} reachable only from the workers' network"]


def worker_oracle(how: Launch) -> str:
    if how.workers:
        raise HarnessError("--workers is for the chief; a worker is one process")
    if not how.oracle:
        raise HarnessError("--role worker needs --oracle HOST:PORT (the chief's)")
    return how.oracle


def launch(cfg: SweepConfig, tracking_uri: str | None, how: Launch, reporter):
    """Run the sweep (or this worker's share of it); a SweepResult, or a WorkerResult for a worker."""
    if how.role == "worker":
        from harness.distributed._worker import run_worker, worker_id

        return run_worker(cfg, tracking_uri, worker_oracle(how), worker_id(), how.parent_run,
                          how.connect_timeout, reporter)
    if cfg.tuner == "hyperband" and not how.local:
        raise HarnessError("--tuner hyperband runs in one process: a trial it continues starts from weights "
                           "an earlier trial saved on this machine; use random or bayesian with --workers/--role")
    from harness.study._sweep import run_sweep

    if how.local:
        return run_sweep(cfg, tracking_uri, reporter, how.mode, register=how.register)
    from harness.distributed import ChiefRunner, chief_address

    runner = ChiefRunner(chief_address(how.role, how.oracle, how.workers), how.workers)
    return run_sweep(cfg, tracking_uri, reporter, runner=runner)
