"""Sweeps over processes and machines on keras-tuner's chief/worker engine: the chief as a trial
runner, the worker, the oracle service, local worker processes (imports: tuning, training,
tracking, servers, data, config)."""

from harness.distributed._chief import ChiefRunner, chief_address
from harness.distributed._worker import WorkerResult, run_worker, worker_id

__all__ = ["ChiefRunner", "WorkerResult", "chief_address", "run_worker", "worker_id"]
