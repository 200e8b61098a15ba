"""Distributed sweeps on keras-tuner's chief/worker engine: the chief (oracle over gRPC, parent
run, best trial), and `--workers N`, which starts a chief and N pinned workers on one machine."""

from __future__ import annotations

import math
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from harness.backbones import _registry as backbones
from harness.config._settings import SweepConfig
from harness.data._folders import scan
from harness.errors import HarnessError
from harness.distributed._oracle_service import TOKEN_ENV, WORKER_TIMEOUT, Chief
from harness.progress import NullReporter
from harness.training._seeding import seed_everything
from harness.servers import start_background_server
from harness.study._sweep import SweepResult, fixed_params_of, sweep_tags, prepare, tuner_dir, warn_about_data
from harness.tracking import Tracker, resolve_store
from harness.tuning._tuner import (TrackedTuner, TrialRecord, log_confusion_matrix, make_oracle, public_values,
                            trial_name)
from harness.tracking import experiments, reading, runs

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


def worker_env(index: int, count: int, cpus: list[int], gpus: list[str]) -> dict[str, str]:
    """Worker `index` of `count`: its share of the cores, and one GPU when there are any."""
    share = cpus[index::count] or [cpus[index % len(cpus)]]
    env = {"KERASTUNER_TUNER_ID": f"tuner{index}", "HARNESS_CPUS": ",".join(map(str, share)),
           "TF_NUM_INTRAOP_THREADS": str(len(share)), "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": str(len(share))}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return env


def _gpu_ids() -> list[str]:
    import tensorflow as tf

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


class Workers:
    """N local worker processes, each `harness sweep <method> --role worker`, logging to a file.
    They need no sweep file: a worker runs the chief's `sweep_config.json`."""

    def __init__(self, count: int, cfg: SweepConfig, oracle: str, parent: str,
                 tracking_uri: str, log_dir: Path, token: str | None = None):
        log_dir.mkdir(parents=True, exist_ok=True)
        cpus, gpus = sorted(os.sched_getaffinity(0)), _gpu_ids()
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        for i in range(count):
            env = worker_env(i, count, cpus, gpus)
            if token:
                env[TOKEN_ENV] = token
            cmd = [sys.executable, "-m", "harness", "sweep", cfg.method, "--role", "worker",
                   "--oracle", oracle, "--parent-run", parent, "--tracking-uri", tracking_uri,
                   "--data", cfg.data]
            tuner_id = env["KERASTUNER_TUNER_ID"]
            self.logs[tuner_id] = log_dir / f"{tuner_id}.log"
            with open(self.logs[tuner_id], "wb") as log:
                self.procs[tuner_id] = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log,
                                                        stderr=subprocess.STDOUT)

    def exited(self) -> dict[str, int]:
        return {t: p.returncode for t, p in self.procs.items() if p.poll() is not None}

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        self.wait(10)


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


def run_chief(cfg: SweepConfig, tracking_uri: str | None, address: str, workers: int = 0,
              reporter=None, worker_timeout: float = WORKER_TIMEOUT) -> SweepResult:
    """Serve the oracle at `address` and own the parent run until every trial has ended.

    With `workers` > 0, also start that many local worker processes (after the features are
    cached, so they all find them) and watch them; else workers connect from elsewhere."""
    reporter = reporter or NullReporter()
    start = time.perf_counter()
    dataset = scan(cfg.data)
    warn_about_data(dataset, reporter)
    backbones.get_spec(cfg.backbone)
    store = resolve_store(tracking_uri)
    tracker = Tracker(store, reporter.store_waiting)
    experiments.find(tracker, cfg.experiment_name)  # a name MLflow refuses, or a deleted experiment's
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # leave GPU memory to the workers
    seed_everything(cfg.seed)
    prepared = prepare(cfg, dataset, reporter)
    experiment_id = experiments.ensure(tracker, cfg.experiment_name)
    oracle = make_oracle(cfg)
    oracle.verbose = 0  # progress is ours (the reporter), not the oracle's printout
    # Local workers get a token of their own, so no other process on this machine can ask for trials.
    token = os.environ.get(TOKEN_ENV) or (secrets.token_urlsafe(24) if workers else None)
    chief = Chief(oracle, address, worker_timeout, token)
    name = f"{cfg.method} · {cfg.backbone} · {datetime.now():%Y-%m-%d %H:%M:%S}"
    tags = sweep_tags(cfg, dataset, prepared)
    parent = runs.start(tracker, experiment_id, name, tags)
    local, server = None, None
    try:
        _open_parent(tracker, parent, cfg, prepared, workers, oracle, experiment_id)
        chief.start()
        # Workers look the parent up by these tags: set them once the sweep is ready to serve.
        tags.update(distributed="true", oracle_port=str(chief.port), oracle_host=address.rpartition(":")[0])
        runs.set_tags(tracker, parent, tags)
        reporter.sweep_started(cfg, name)
        if workers:
            logs = tuner_dir(store) / parent / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            uri = store.uri
            if store.local_dir is not None:  # one sqlite file, many writers: put a server in front
                server, uri = start_background_server(store.uri, store.artifact_root,
                                                      logs.parent / "mlflow-server.log")
            local = Workers(workers, cfg, _local_address(address, chief.port), parent, uri, logs, token)
        _watch(chief, local, reporter, cfg.max_trials, cfg.method)
        if local:
            local.wait(60)
        chief.stop()
        _end_leftovers(tracker, parent)  # e.g. a worker lost for silence that never came back
        records, best = _record_best(tracker, parent, oracle, cfg.method)
        seconds = time.perf_counter() - start
        runs.log_metrics(tracker, parent, {"sweep_seconds": seconds,
                                     "trials_finished": sum(r.status == "FINISHED" for r in records)})
        tracker.client.set_terminated(parent, "FINISHED")
    except BaseException as exc:
        _abort(tracker, parent, chief, local, isinstance(exc, KeyboardInterrupt))
        raise
    finally:
        if server is not None:
            server.stop()
    return SweepResult(cfg.method, cfg.experiment_name, parent, store.uri, records, best, seconds,
                       prepared.cache_hit, prepared.extraction_seconds, tags)


def _open_parent(tracker: Tracker, parent: str, cfg: SweepConfig, prepared, workers: int, oracle,
                 experiment_id: str) -> None:
    """The parent's params and config (workers run this config), and the oracle's search space."""
    runs.log_params(tracker, parent, {**fixed_params_of(cfg, prepared), "max_trials": cfg.max_trials,
                                "workers": workers})
    tracker.client.log_dict(parent, cfg.to_dict(), "sweep_config.json")
    runs.log_metrics(tracker, parent, {"extraction_seconds": prepared.extraction_seconds,
                                 "cache_hit": float(prepared.cache_hit)})
    TrackedTuner(oracle, prepared.hypermodel, cfg=cfg, tracker=tracker, experiment_id=experiment_id,
                 parent_id=parent, fixed_params={}, reporter=NullReporter(),  # builds the space, runs nothing
                 directory=str(tuner_dir(tracker.store)), project_name=parent, overwrite=True)


def _abort(tracker: Tracker, parent: str, chief: Chief, local: Workers | None, interrupted: bool) -> None:
    """Stop everything and leave nothing RUNNING: workers, their trials, the parent."""
    if local:
        local.stop()
    chief.stop()
    _end_leftovers(tracker, parent)
    tracker.client.set_terminated(parent, "KILLED" if interrupted else "FAILED")


def _end_leftovers(tracker: Tracker, parent: str) -> None:
    for child in reading.children(tracker, parent):
        if child.status == "RUNNING":
            tracker.client.set_terminated(child.run_id, "KILLED")


def _record_best(tracker: Tracker, parent: str, oracle, method: str) -> tuple[list[TrialRecord], TrialRecord | None]:
    """The trials as their FINISHED child runs report them; the best by the oracle's
    ranking on validation accuracy (test accuracy is reported, never used to choose)."""
    children = {c.tags.get("trial_id"): c for c in reading.children(tracker, parent) if c.status == "FINISHED"}
    records = []
    for trial_id in oracle.end_order:
        child = children.get(trial_id)
        values = public_values(oracle.trials[trial_id].hyperparameters.values)
        if child is None:
            records.append(TrialRecord(trial_id, "", trial_name(method, trial_id, values), values, "FAILED"))
            continue
        records.append(TrialRecord.from_run(trial_id, child, values))
    best_trials = oracle.get_best_trials(1)
    best = next((r for r in records if best_trials and r.trial_id == best_trials[0].trial_id and r.run_id), None)
    if best is not None:
        runs.set_tags(tracker, parent, {"best_trial_id": best.trial_id, "best_run_id": best.run_id,
                                  **{f"best.{k}": v for k, v in best.hyperparameters.items()}})
        metrics = {"best_val_accuracy": best.val_accuracy}
        if not math.isnan(best.test_accuracy):
            metrics["best_test_accuracy"] = best.test_accuracy
        runs.log_metrics(tracker, parent, metrics)
        log_confusion_matrix(tracker, best.run_id, f"{best.name} · test split")
    return records, best
