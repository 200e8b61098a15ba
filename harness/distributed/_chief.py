"""The chief of a distributed sweep on keras-tuner's chief/worker engine, as a trial runner of the
one sweep lifecycle (harness.study): its oracle served over gRPC, the workers (`--workers N`
local ones, or any that connect) running the trials, and the trial records read back from the
workers' child runs."""

from __future__ import annotations

import math
import os
import secrets
import time

from harness.distributed._local_workers import Workers
from harness.distributed._oracle_service import TOKEN_ENV, WORKER_TIMEOUT, Chief
from harness.errors import HarnessError
from harness.progress import NullReporter
from harness.servers import start_background_server
from harness.tracking import reading, runs
from harness.tuning._context import SweepContext
from harness.tuning._tuner import TrackedTuner, TrialRecord, make_oracle, public_values, trial_name

DONE_GRACE = 15.0  # after the last trial, how long idle workers get to hear "stop"


def chief_address(role: str | None, oracle: str | None, workers: int) -> str:
    """Where the chief listens: --oracle with --role chief, else a free loopback port."""
    from harness.distributed._worker import parse_address

    if role not in (None, "chief"):
        raise HarnessError(f"--role: {role!r} is not one of chief, worker")
    if workers < 0:
        raise HarnessError(f"--workers: must be >= 0, got {workers}")
    if role is None:
        if oracle:
            raise HarnessError("--oracle needs --role chief or --role worker")
        return "127.0.0.1:0"
    if not oracle:
        raise HarnessError("--role chief needs --oracle HOST:PORT (the address to serve on)")
    parse_address(oracle)
    return oracle


def _local_address(address: str, port: int) -> str:
    host = address.rpartition(":")[0]
    return f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{port}"


class ChiefRunner:
    """Serve the oracle at `address` and watch the trials until every one has ended. With `workers`
    > 0, also start that many local worker processes (after the features are cached, so they all
    find them); else workers connect from elsewhere. A distributed sweep logs no model: the
    winner's weights are on whichever worker trained it."""

    def __init__(self, address: str, workers: int = 0, worker_timeout: float = WORKER_TIMEOUT):
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # leave GPU memory to the workers
        self.address, self.workers, self.worker_timeout = address, workers, worker_timeout
        self.tags: dict[str, str] = {}
        self.params = {"workers": workers}
        self.chief: Chief | None = None
        self.local: Workers | None = None
        self.server = None  # the private MLflow server local workers log through
        self._records: list[TrialRecord] = []
        self._parent = self._tracker = None

    def claim(self, ctx: SweepContext) -> None:
        return None  # a distributed sweep always starts a new parent run

    def hold(self, parent: str) -> None:
        """Nothing to lock: workers find the parent by its oracle tags."""

    def run(self, ctx: SweepContext, parent: str) -> None:
        self._parent, self._tracker = parent, ctx.tracker
        self.oracle = make_oracle(ctx.cfg)
        self.oracle.verbose = 0  # progress is ours (the reporter), not the oracle's printout
        # Local workers get a token of their own, so no other process on this machine can ask for trials.
        token = os.environ.get(TOKEN_ENV) or (secrets.token_urlsafe(24) if self.workers else None)
        self.chief = Chief(self.oracle, self.address, self.worker_timeout, token)
        TrackedTuner(self.oracle, ctx.prepared.hypermodel, cfg=ctx.cfg, tracker=ctx.tracker,  # builds the space
                     experiment_id=ctx.experiment_id, parent_id=parent, fixed_params={}, reporter=NullReporter(),
                     directory=str(ctx.tuner_dir), project_name=parent, overwrite=True)
        self.chief.start()
        # Workers look the parent up by these tags: set them once the sweep is ready to serve.
        self.tags = {"distributed": "true", "oracle_port": str(self.chief.port),
                     "oracle_host": self.address.rpartition(":")[0]}
        runs.set_tags(ctx.tracker, parent, {**ctx.tags, **self.tags})
        ctx.reporter.sweep_started(ctx.cfg, ctx.tracker.client.get_run(parent).info.run_name)
        if self.workers:
            self._start_workers(ctx, parent, token)
        _watch(self.chief, self.local, ctx.reporter, ctx.cfg.max_trials, ctx.cfg.method)
        if self.local:
            self.local.wait(60)
        self.chief.stop()
        self._end_leftovers()  # e.g. a worker lost for silence that never came back
        self._records = self._read_records(ctx)

    def _start_workers(self, ctx: SweepContext, parent: str, token: str | None) -> None:
        logs = ctx.tuner_dir / parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        uri = ctx.store.uri
        if ctx.store.local_dir is not None:  # one sqlite file, many writers: put a server in front
            self.server, uri = start_background_server(ctx.store.uri, ctx.store.artifact_root,
                                                       logs.parent / "mlflow-server.log")
        self.local = Workers(self.workers, ctx.cfg, _local_address(self.address, self.chief.port), parent, uri,
                             logs, token)

    def _read_records(self, ctx: SweepContext) -> list[TrialRecord]:
        """The trials as their FINISHED child runs report them, in the order they ended."""
        children = {c.tags.get("trial_id"): c for c in reading.children(ctx.tracker, self._parent)
                    if c.status == "FINISHED"}
        records = []
        for trial_id in self.oracle.end_order:
            child = children.get(trial_id)
            values = public_values(self.oracle.trials[trial_id].hyperparameters.values)
            if child is None:
                name = trial_name(ctx.cfg.method, trial_id, values)
                records.append(TrialRecord(trial_id, "", name, values, "FAILED"))
            else:
                records.append(TrialRecord.from_run(trial_id, child, values))
        return records

    def records(self) -> list[TrialRecord]:
        return self._records

    def best_trial_id(self) -> str | None:
        best = self.oracle.get_best_trials(1)
        return best[0].trial_id if best else None

    def log_winner(self, ctx: SweepContext, parent: str, best: TrialRecord) -> None:
        return None

    def stop(self) -> None:
        """Workers and the oracle stopped, and whatever trial they left RUNNING ended KILLED."""
        if self.local:
            self.local.stop()
        if self.chief:
            self.chief.stop()
        if self._parent:
            self._end_leftovers()

    def _end_leftovers(self) -> None:
        runs.end_running_children(self._tracker, None, self._parent, "KILLED")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def _watch(chief: Chief, workers: Workers | None, reporter, total: int, method: str) -> None:
    """Until every trial has ended: re-queue the trials of dead workers, show progress."""
    reported: set[str] = set()
    done_at = None
    while True:
        time.sleep(0.5)
        chief.tick()
        for tuner_id, code in (workers.exited() if workers else {}).items():
            if tuner_id not in chief.lost and tuner_id not in chief.servicer.stopped:
                chief.mark_dead(tuner_id)
        for trial in chief.ended_trials():
            if trial.trial_id not in reported:
                reported.add(trial.trial_id)
                reporter.trial_ended(_oracle_record(trial, method))
        reporter.workers_changed(chief.workers(), len(reported), total)
        if chief.trials_done():
            done_at = done_at or time.monotonic()
            if not chief.workers_left() or time.monotonic() - done_at > DONE_GRACE:
                return
        elif workers and len(workers.exited()) == len(workers.procs):
            raise HarnessError(f"all {len(workers.procs)} workers exited before the sweep ended; "
                               f"see {next(iter(workers.logs.values())).parent}")


def _oracle_record(trial, method: str) -> TrialRecord:
    values = public_values(trial.hyperparameters.values)
    score = trial.score if trial.score is not None else math.nan
    status = "FINISHED" if trial.status == "COMPLETED" else "FAILED"
    return TrialRecord(trial.trial_id, "", trial_name(method, trial.trial_id, values), values,
                       status, val_accuracy=score)

