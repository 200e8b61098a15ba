"""A worker of a distributed sweep: asks the chief's oracle for trials (keras-tuner's
OracleClient over gRPC) and logs each as a child run of the chief's parent run."""

from __future__ import annotations

import _thread
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass

from harness import config as config
from harness.config import SweepConfig
from harness.data._folders import DataSet, scan
from harness.errors import HarnessError
from harness.distributed._oracle_service import HEARTBEAT_SECONDS, TOKEN_ENV, token_metadata
from harness.progress import NullReporter
from harness.tracking import Tracker, resolve_store
from harness.tuning._context import open_context
from harness.tuning._tuner import TrackedTuner, make_oracle
from harness.tracking import reading, runs

LOST_CHIEF_SECONDS = 30.0  # once connected, this long without an answer means the chief is gone


@dataclass
class WorkerResult:
    tuner_id: str
    parent_run_id: str
    trials: int


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HarnessError(f"--oracle: expected HOST:PORT, got {address!r}")
    return host, int(port)


def worker_id() -> str:
    """KERASTUNER_TUNER_ID if set (the local launcher sets it), else unique per host and process.
    keras-tuner treats any id containing 'chief' as the chief, so a host name must not add one."""
    given = os.environ.get("KERASTUNER_TUNER_ID")
    if given:
        if "chief" in given:
            raise HarnessError(f"KERASTUNER_TUNER_ID={given!r}: a worker's id must not contain 'chief'")
        return given
    return f"worker-{socket.gethostname().replace('chief', 'chf')}-{os.getpid()}"


def pin_from_env() -> None:
    """Keep to the cores the launcher gave this worker (HARNESS_CPUS), before TF starts its pools."""
    cpus = os.environ.get("HARNESS_CPUS")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


class _Deadlines:
    """Wraps the gRPC stub of keras-tuner's OracleClient, whose calls wait up to an hour:
    wait long for the chief to come up, then give up quickly once it has gone."""

    def __init__(self, stub, connect_timeout: float, token: str | None = None):
        self.stub, self.connect_timeout, self.connected = stub, connect_timeout, False
        self.metadata = token_metadata(token)  # the chief's shared token, when it wants one
        self.failure = None  # the gRPC error of a call the chief did not answer

    def __getattr__(self, name):
        call = getattr(self.stub, name)

        def with_deadline(request, **kwargs):
            import grpc

            kwargs["timeout"] = LOST_CHIEF_SECONDS if self.connected else self.connect_timeout
            if self.metadata:
                kwargs["metadata"] = self.metadata
            try:
                response = call(request, **kwargs)
            except grpc.RpcError as exc:
                self.failure = exc
                raise
            self.connected = True
            return response

        return with_deadline


class WorkerTuner(TrackedTuner):
    """TrackedTuner plus a heartbeat per trial, and clean-up of a killed earlier attempt."""

    def on_trial_begin(self, trial):
        # A trial handed out again (its first worker died) may have left a RUNNING child.
        runs.end_running_children(self.tracker, None, self.parent_id, "KILLED", trial.trial_id)
        super().on_trial_begin(trial)
        runs.set_tags(self.tracker, self.records[trial.trial_id].run_id, {
            "tuner_id": self.tuner_id, "host": socket.gethostname(), "pid": os.getpid()})
        self._beating = threading.Event()
        threading.Thread(target=self._heartbeat, args=(trial.trial_id, self._beating), daemon=True).start()

    def on_trial_end(self, trial):
        self._beating.set()
        if self.oracle.stub.failure is not None:
            # The chief went away, possibly after training ended but before it got the result
            # (keras-tuner then calls the trial failed): the trial did not complete as part of
            # the sweep. Its run stays RUNNING here and run_worker ends it KILLED.
            raise self.oracle.stub.failure
        super().on_trial_end(trial)

    chief_lost = None  # the gRPC error that showed the chief has gone

    def _heartbeat(self, trial_id: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                self.oracle.get_trial(trial_id)  # the chief notes who asked
            except Exception as exc:  # no chief to report to: stop the trial now, not at its end
                if not stop.is_set():
                    self.chief_lost = exc
                    _thread.interrupt_main()
                return


def _find_parent(tracker: Tracker, cfg: SweepConfig, port: int, wait: float) -> str:
    """The chief's RUNNING parent run for this oracle port (the chief may still be starting)."""
    deadline = time.monotonic() + wait
    while True:
        found = reading.find_distributed_sweeps(tracker, cfg.experiment_name, port)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise HarnessError(f"{len(found)} running sweeps use oracle port {port} in experiment "
                               f"{cfg.experiment_name!r}; pass --parent-run RUN_ID")
        if time.monotonic() > deadline:
            raise HarnessError(f"no running chief for oracle port {port} in experiment "
                               f"{cfg.experiment_name!r} at {tracker.store.shown} after {wait:.0f}s "
                               "(same --tracking-uri and --experiment as the chief?)")
        time.sleep(2)


def _sweep_config(tracker: Tracker, parent: str, local: SweepConfig) -> tuple[SweepConfig, DataSet]:
    """The chief's config, so every worker runs the same sweep; only the data path is local."""
    table = reading.load_json(tracker, parent, "sweep_config.json")
    table.update(data=local.data)
    cfg = config.validate(config.parse(table, local.method))
    expected = tracker.client.get_run(parent).data.tags.get("data_fingerprint")
    dataset = scan(cfg.data)
    if expected and dataset.fingerprint != expected:
        raise HarnessError(f"data folder {cfg.data} differs from the chief's (fingerprint {expected})")
    return cfg, dataset


def run_worker(local: SweepConfig, tracking_uri: str | None, oracle: str, tuner_id: str,
               parent_run: str | None = None, connect_timeout: float = 600.0, reporter=None) -> WorkerResult:
    """Run trials handed out by the chief at `oracle` until it says stop."""
    import grpc

    pin_from_env()
    host, port = parse_address(oracle)
    reporter = reporter or NullReporter()
    tracker = Tracker(resolve_store(tracking_uri), reporter.store_waiting)
    parent = parent_run or _find_parent(tracker, local, port, connect_timeout)
    cfg, dataset = _sweep_config(tracker, parent, local)
    ctx = open_context(cfg, None, reporter, dataset=dataset, tracker=tracker)  # the chief's preamble, here
    os.environ.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP=host,
                      KERASTUNER_ORACLE_PORT=str(port))
    scratch = tempfile.TemporaryDirectory(prefix="harness-worker-")  # the oracle's state is the chief's
    tuner = WorkerTuner(  # keras-tuner sees the env and wraps the oracle in its OracleClient
        make_oracle(cfg), ctx.prepared.hypermodel, cfg=cfg, tracker=tracker,
        experiment_id=tracker.client.get_run(parent).info.experiment_id, parent_id=parent,
        fixed_params=ctx.fixed_params, reporter=reporter, directory=scratch.name, project_name=tuner_id,
        overwrite=True)
    tuner.oracle.stub = _Deadlines(tuner.oracle.stub, connect_timeout, os.environ.get(TOKEN_ENV) or None)
    reporter.sweep_started(cfg, f"worker {tuner_id} of parent run {parent}")
    try:
        tuner.search(ctx.prepared.data, verbose=0)
    except (grpc.RpcError, KeyboardInterrupt) as exc:
        lost = exc if isinstance(exc, grpc.RpcError) else tuner.chief_lost
        if lost is not None:
            tracker.patience.stop_waiting()  # the chief is gone: do not also wait out the server
        _end_running(tracker, tuner)
        if lost is None:
            raise
        if lost.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise HarnessError(f"worker {tuner_id}: the chief at {oracle} turned it away: set {TOKEN_ENV} to "
                               "the chief's secret") from None
        raise HarnessError(f"worker {tuner_id}: lost the chief at {oracle} ({lost.code().name}); "
                           "it finished or died") from None
    except BaseException:
        _end_running(tracker, tuner)
        raise
    finally:
        scratch.cleanup()
    return WorkerResult(tuner_id, parent, len(tuner.records))


def _end_running(tracker: Tracker, tuner: WorkerTuner) -> None:
    """The trial this worker was on ends KILLED; the chief hands it out again."""
    for record in tuner.records.values():
        if record.status == "RUNNING":
            tracker.client.set_terminated(record.run_id, "KILLED")
            record.status = "KILLED"
