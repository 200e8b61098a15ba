"""The chief's side of keras-tuner's distributed engine: its oracle served over gRPC, plus
the bookkeeping keras-tuner leaves out (dead workers, idle workers, a prompt shutdown)."""

from __future__ import annotations

import hmac
import os
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from keras_tuner import synchronized

from harness.tuning._kt_internals import OracleServicer, Trial, TrialStatus, protos, retry_queue

TOKEN_ENV = "HARNESS_ORACLE_TOKEN"  # a shared secret every worker must send the chief
HEARTBEAT_SECONDS = 2.0  # how often a worker tells the chief it is still on its trial
WORKER_TIMEOUT = 60.0    # silence after which a worker's trial goes back in the queue
IDLE_WAIT = 1.0          # an idle worker re-asks this often while others still run trials


@synchronized
def _create_or_wait(oracle, tuner_id: str) -> Trial:
    """keras-tuner tells a worker STOPPED once all trials are handed out; a trial still
    running elsewhere may yet come back for a retry, so keep the worker (IDLE) until then."""
    trial = oracle.create_trial(tuner_id)
    if trial.status == TrialStatus.STOPPED and (oracle.ongoing_trials or retry_queue(oracle)):
        oracle.tuner_ids.add(tuner_id)
        return Trial(oracle.get_space(), status=TrialStatus.IDLE)
    return trial


@synchronized
def _requeue(oracle, tuner_id: str) -> str | None:
    """Forget a dead worker; its trial goes to the retry queue, as `Oracle.reload` does
    with the trials a crashed chief left ongoing. Returns the trial id, if any."""
    oracle.tuner_ids.discard(tuner_id)
    trial = oracle.ongoing_trials.pop(tuner_id, None)
    if trial is None:
        return None
    retry_queue(oracle).append(trial.trial_id)
    oracle.save()
    return trial.trial_id


@synchronized
def _finished(oracle) -> bool:
    return not oracle.ongoing_trials and not retry_queue(oracle)


class Servicer(OracleServicer):
    """keras-tuner's servicer, noting when each worker was last heard from."""

    def __init__(self, oracle):
        super().__init__(oracle)
        self.last_seen: dict[str, float] = {}
        self.stopped: set[str] = set()  # workers told STOPPED: they exit by themselves

    def _touch_trial(self, trial_id: str) -> None:
        for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self.last_seen[tuner_id] = time.monotonic()

    def CreateTrial(self, request, context):
        self.last_seen[request.tuner_id] = time.monotonic()
        trial = _create_or_wait(self.oracle, request.tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(IDLE_WAIT)  # the worker re-asks at once; this paces it
        if trial.status == TrialStatus.STOPPED:
            self.stop_triggered = True
            self.stopped.add(request.tuner_id)
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def GetTrial(self, request, context):  # also the workers' heartbeat
        self._touch_trial(request.trial_id)
        return super().GetTrial(request, context)

    def UpdateTrial(self, request, context):
        self._touch_trial(request.trial_id)
        return super().UpdateTrial(request, context)


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """What a worker sends with every call when the chief wants a token."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class _TokenCheck(grpc.ServerInterceptor):
    """Turns away every call that does not carry the shared token. keras-tuner's client opens
    its own insecure channel, but harness sends each call through its own stub wrapper
    (harness.distributed._worker), so the token travels without patching keras-tuner."""

    def __init__(self, token: str):
        self.expected = token_metadata(token)[0][1].encode()

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{TOKEN_ENV} missing or wrong")

        self.refuse = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, details):
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(given.encode(), self.expected):
            return continuation(details)
        return self.refuse


@dataclass
class WorkerState:
    tuner_id: str
    trial_id: str | None
    state: str  # running, idle, done, lost


class Chief:
    """Serves the oracle; `tick()` re-queues the trials of workers gone silent or dead."""

    def __init__(self, oracle, address: str, worker_timeout: float = WORKER_TIMEOUT, token: str | None = None):
        self.oracle, self.worker_timeout = oracle, worker_timeout
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.servicer = Servicer(oracle)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  interceptors=[_TokenCheck(self.token)] if self.token else None)
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        self.lost: dict[str, str | None] = {}  # tuner id -> the trial it left behind

    def start(self) -> "Chief":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=2).wait()

    def mark_dead(self, tuner_id: str) -> str | None:
        """A worker is gone (its process ended, or it fell silent): re-queue its trial."""
        trial_id = _requeue(self.oracle, tuner_id)
        self.lost[tuner_id] = trial_id
        self.servicer.last_seen.pop(tuner_id, None)
        return trial_id

    def tick(self) -> list[str]:
        """Re-queue the trials of workers silent for longer than the timeout."""
        now, lost = time.monotonic(), []
        for tuner_id in list(self.oracle.ongoing_trials):
            seen = self.servicer.last_seen.get(tuner_id, now)
            if now - seen > self.worker_timeout:
                self.mark_dead(tuner_id)
                lost.append(tuner_id)
        return lost

    def trials_done(self) -> bool:
        """Every trial handed out has ended and no more will be (keras-tuner said STOPPED)."""
        return self.servicer.stop_triggered and _finished(self.oracle)

    def workers_left(self) -> set[str]:
        """Connected workers not yet told to stop."""
        return set(self.oracle.tuner_ids) - self.servicer.stopped - set(self.lost)

    def workers(self) -> list[WorkerState]:
        ongoing = dict(self.oracle.ongoing_trials)
        states = []
        for tuner_id in sorted(set(self.servicer.last_seen) | self.servicer.stopped | set(self.lost)):
            trial = ongoing.get(tuner_id)
            if tuner_id in self.lost:
                states.append(WorkerState(tuner_id, self.lost[tuner_id], "lost"))
            elif trial is not None:
                states.append(WorkerState(tuner_id, trial.trial_id, "running"))
            else:
                states.append(WorkerState(tuner_id, None, "done" if tuner_id in self.servicer.stopped
                                          else "idle"))
        return states

    def ended_trials(self) -> list[Trial]:
        return [self.oracle.trials[t] for t in self.oracle.end_order]
