"""Distributed sweeps on keras-tuner's chief/worker engine, on loopback.

The fast tests drive the chief's oracle service directly; the `slow` ones run real processes
(`python -m harness ...`) and check what landed in MLflow through MLflow's own client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

PROCESS_TIMEOUT = 600


# -- the chief's oracle service, in process ------------------------------------------------
@pytest.fixture
def chief(tmp_path, monkeypatch):
    import keras_tuner as kt

    from harness.distributed import _oracle_service as oracle_service
    from harness.distributed._oracle_service import Chief

    monkeypatch.setattr(oracle_service, "IDLE_WAIT", 0.0)
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2, seed=1)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0
    hp = oracle.get_space()
    hp.Choice("units", [1, 2, 3, 4])
    oracle.update_space(hp)
    yield Chief(oracle, "127.0.0.1:0", worker_timeout=0.3)


def _ask(chief, tuner_id):
    from keras_tuner.src import protos

    request = protos.get_service().CreateTrialRequest(tuner_id=tuner_id)
    return chief.servicer.CreateTrial(request, None).trial


def _finish(chief, trial_proto, score):
    from keras_tuner.src import protos
    from keras_tuner.src.engine.trial import Trial

    service = protos.get_service()
    chief.servicer.UpdateTrial(service.UpdateTrialRequest(
        trial_id=trial_proto.trial_id, metrics={"val_accuracy": score}), None)
    trial = Trial.from_proto(trial_proto)
    trial.status = "COMPLETED"
    chief.servicer.EndTrial(service.EndTrialRequest(trial=trial.to_proto()), None)


def _beat(chief, trial_id):
    from keras_tuner.src import protos

    chief.servicer.GetTrial(protos.get_service().GetTrialRequest(trial_id=trial_id), None)


def test_a_silent_worker_loses_its_trial_to_another(chief):
    from keras_tuner.src.engine.trial import TrialStatus

    first = _ask(chief, "tuner0")
    second = _ask(chief, "tuner1")
    assert {first.trial_id, second.trial_id} == {"0", "1"}
    time.sleep(0.2)
    _beat(chief, second.trial_id)  # tuner1 is alive; tuner0 says nothing from now on
    time.sleep(0.2)
    assert chief.tick() == ["tuner0"]
    assert chief.oracle._retry_queue == [first.trial_id]
    _finish(chief, second, 0.7)
    again = _ask(chief, "tuner1")
    assert again.trial_id == first.trial_id  # the same trial again, not a new one
    assert not chief.trials_done()
    _finish(chief, again, 0.6)
    assert _ask(chief, "tuner1").status == TrialStatus.to_proto(TrialStatus.STOPPED)
    assert chief.trials_done() and not chief.workers_left()
    assert [t.trial_id for t in chief.ended_trials()] == ["1", "0"]


def test_an_idle_worker_is_kept_while_a_trial_may_come_back(chief):
    from keras_tuner.src.engine.trial import TrialStatus

    first = _ask(chief, "tuner0")
    _finish(chief, _ask(chief, "tuner1"), 0.5)
    # Both trials handed out, one still running: keras-tuner would send tuner1 home now.
    assert _ask(chief, "tuner1").status == TrialStatus.to_proto(TrialStatus.IDLE)
    chief.mark_dead("tuner0")
    retry = _ask(chief, "tuner1")
    assert retry.trial_id == first.trial_id


def test_worker_env_splits_cores_and_gpus():
    from harness.distributed._local_workers import worker_env

    envs = [worker_env(i, 2, [0, 1, 2, 3], ["0", "1"]) for i in range(2)]
    assert [e["HARNESS_CPUS"] for e in envs] == ["0,2", "1,3"]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1"]
    assert [e["KERASTUNER_TUNER_ID"] for e in envs] == ["tuner0", "tuner1"]
    assert envs[0]["TF_NUM_INTRAOP_THREADS"] == "2"
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(0, 3, [0], [])


@pytest.mark.parametrize("extra, message", [
    (["--role", "worker"], "--role worker needs --oracle"),
    (["--role", "boss", "--oracle", "127.0.0.1:1"], "--role: 'boss' is not one of"),
    (["--role", "chief", "--oracle", "nowhere"], "--oracle: expected HOST:PORT"),
    (["--oracle", "127.0.0.1:5"], "--oracle needs --role"),
])
def test_bad_distributed_flags_are_one_line(tiny_data, unopened_store_uri, tmp_path, extra, message):
    result = CliRunner().invoke(app, tiny_sweep_args("feature-extraction", tiny_data, unopened_store_uri, *extra))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "store").exists()


def test_worker_without_a_chief_gives_up_with_a_message(tiny_data, store_uri):
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--role", "worker",
                           "--oracle", f"127.0.0.1:{_free_port()}", "--connect-timeout", "1")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "no running chief for oracle port" in result.output


def test_a_chief_whose_store_cannot_list_the_trials_on_abort_still_ends_its_parent(tiny_data, store_uri, client,
                                                                                 monkeypatch):
    """The chief's sweep fails (here: its workers all exit), and while it aborts the store will not
    list the parent's children: the parent still ends FAILED, and the first error is what the user reads."""
    from harness.distributed import _chief
    from harness.errors import HarnessError, StoreError
    from harness.tracking import runs

    def workers_gone(*args, **kwargs):
        raise HarnessError("all 2 workers exited before the sweep ended")

    def no_listing(*args, **kwargs):
        raise StoreError("the store would not list the runs")

    monkeypatch.setattr(_chief, "_watch", workers_gone)
    monkeypatch.setattr(runs, "children", no_listing)  # what end_running_children lists with
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--role", "chief",
                           "--oracle", f"127.0.0.1:{_free_port()}")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "all 2 workers exited" in result.output and "Traceback" not in result.output
    parents, children = runs_of(client, tiny_data.name)
    assert [p.info.status for p in parents] == ["FAILED"]
    assert parents[0].data.tags["distributed"] == "true"


# -- real processes ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every process a test starts; each is waited with a timeout and killed at teardown."""

    def __init__(self, log_dir):
        self.log_dir, self.procs = log_dir, []

    def start(self, name, *args):
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=log, stderr=subprocess.STDOUT)
        proc.name = name
        self.procs.append(proc)
        return proc

    def wait(self, proc, timeout=PROCESS_TIMEOUT):
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{proc.name} did not exit by itself in {timeout}s:\n{self.log(proc)}")
        assert code == 0, f"{proc.name} exited {code}:\n{self.log(proc)}"

    def log(self, proc):
        return (self.log_dir / f"{proc.name}.log").read_text(errors="replace")[-4000:]

    def kill_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.kill_all()


def _wait_healthy(uri, proc, processes, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, processes.log(proc)
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"server not up:\n{processes.log(proc)}")


def _assert_each_trial_finished_once(client, experiment, trials):
    parents, children = runs_of(client, experiment)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    finished = Counter(c.data.tags["trial_id"] for c in children if c.info.status == "FINISHED")
    assert len(finished) == trials and set(finished.values()) == {1}, finished
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)
    best = parent.data.tags["best_run_id"]
    assert best in {c.info.run_id for c in children if c.info.status == "FINISHED"}
    assert parent.data.metrics["best_val_accuracy"] == max(
        c.data.metrics["best_val_accuracy"] for c in children if c.info.status == "FINISHED")
    return parent, children


@pytest.mark.slow
def test_chief_and_two_workers_over_a_tracking_server(tiny_data, tmp_path, processes):
    from mlflow import MlflowClient

    port, oracle = _free_port(), f"127.0.0.1:{_free_port()}"
    server = processes.start("server", "server", "--port", str(port), "--backend-store-uri",
                             f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp_path / "artifacts"))
    uri = f"http://127.0.0.1:{port}"
    _wait_healthy(uri, server, processes)
    args = tiny_sweep_args("feature-extraction", tiny_data, uri, "--max-trials", "6")
    # Workers first: they wait for the chief's parent run and oracle to appear.
    workers = [processes.start(f"worker{i}", *args, "--role", "worker", "--oracle", oracle) for i in range(2)]
    chief = processes.start("chief", *args, "--role", "chief", "--oracle", oracle)
    for proc in (chief, *workers):
        processes.wait(proc)
    client = MlflowClient(tracking_uri=uri)
    _, children = _assert_each_trial_finished_once(client, "tiny", trials=6)
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["tuner_id"] for c in children} <= {
        f"worker-{socket.gethostname()}-{w.pid}" for w in workers}


@pytest.mark.slow
def test_a_worker_killed_mid_trial_does_not_lose_the_sweep(tiny_data, store_uri, processes):
    from mlflow import MlflowClient

    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--max-trials", "6", "--epochs", "4")
    client = MlflowClient(tracking_uri=store_uri)  # the store's tables first: not two processes migrating at once
    client.search_experiments()
    launcher = processes.start("launcher", *args, "--workers", "2")
    victim = _running_child_with_pid(client, launcher, processes)
    os.kill(int(victim.data.tags["pid"]), signal.SIGKILL)
    processes.wait(launcher)
    _, children = _assert_each_trial_finished_once(client, "tiny", trials=6)
    killed = next(c for c in children if c.info.run_id == victim.info.run_id)
    assert killed.info.status == "KILLED"
    again = [c for c in children if c.data.tags["trial_id"] == victim.data.tags["trial_id"]]
    assert sorted(c.info.status for c in again) == ["FINISHED", "KILLED"]


def _running_child_with_pid(client, launcher, processes, timeout=300):
    """The first trial a worker is running (its child run is tagged with the worker's pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert launcher.poll() is None, processes.log(launcher)
        exp = client.get_experiment_by_name("tiny")
        if exp is not None:
            for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
                if "pid" in run.data.tags and "trial_id" in run.data.tags:
                    return run
        time.sleep(0.1)
    pytest.fail(f"no worker started a trial:\n{processes.log(launcher)}")


@pytest.mark.slow
def test_workers_exit_by_themselves_when_the_chief_dies(tiny_data, store_uri, processes):
    from mlflow import MlflowClient

    oracle = f"127.0.0.1:{_free_port()}"
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--max-trials", "30", "--epochs", "4")
    client = MlflowClient(tracking_uri=store_uri)  # the store's tables first: not two processes migrating at once
    client.search_experiments()
    chief = processes.start("chief", *args, "--role", "chief", "--oracle", oracle)
    worker = processes.start("worker", *args, "--role", "worker", "--oracle", oracle)
    _running_child_with_pid(client, worker, processes)
    chief.send_signal(signal.SIGKILL)
    try:
        code = worker.wait(180)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running 180s after the chief died:\n{processes.log(worker)}")
    assert code == 2 and "lost the chief" in processes.log(worker), processes.log(worker)
    _, children = runs_of(client, "tiny")
    assert children and all(c.info.status in ("FINISHED", "KILLED") for c in children)


# -- the oracle's shared token and the chief's warning -------------------------------------
def test_the_chief_turns_away_calls_without_its_token(chief, monkeypatch):
    import grpc
    from keras_tuner.src import protos

    from harness.distributed._oracle_service import Chief, token_metadata

    secured = Chief(chief.oracle, "127.0.0.1:0", token="s3cret-token").start()
    try:
        stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(f"127.0.0.1:{secured.port}"))
        request = protos.get_service().GetSpaceRequest()
        for metadata in ((), token_metadata("wrong-token")):
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetSpace(request, timeout=10, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "HARNESS_ORACLE_TOKEN" in refused.value.details()
        from keras_tuner.src.engine.hyperparameters import HyperParameters

        space = stub.GetSpace(request, timeout=10, metadata=token_metadata("s3cret-token"))
        assert [hp.name for hp in HyperParameters.from_proto(space.hyperparameters).space] == ["units"]
    finally:
        secured.stop()


def test_a_chief_on_the_network_prints_one_warning_line(tmp_path, store_uri, monkeypatch):
    monkeypatch.delenv("HARNESS_ORACLE_TOKEN", raising=False)
    args = tiny_sweep_args("feature-extraction", tmp_path / "no-data", store_uri, "--role", "chief",
                           "--oracle", f"0.0.0.0:{_free_port()}")
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 2, result.output  # the warning, then the bad --data
    assert lines[0].startswith("warning: the chief's oracle listens on 0.0.0.0:")
    assert "workers' network" in lines[0] and "HARNESS_ORACLE_TOKEN" in lines[0]
    local = CliRunner().invoke(app, args[:-1] + [f"127.0.0.1:{_free_port()}"])
    assert "warning" not in local.output


def test_a_worker_without_the_chiefs_token_is_turned_away_with_one_line(tiny_data, store_uri, client, monkeypatch):
    import keras_tuner as kt

    from harness import config as config
    from harness.data._folders import scan
    from harness.distributed._oracle_service import Chief

    cfg = config.parse({"data": str(tiny_data), "weights": "none", "image_size": 32, "epochs": 1,
                        "max_trials": 1, "backbone": "vgg16"}, "feature-extraction")
    exp = client.create_experiment("tiny")
    parent = client.create_run(exp, tags={"data_fingerprint": scan(tiny_data).fingerprint}).info.run_id
    client.log_dict(parent, cfg.to_dict(), "sweep_config.json")
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=1)
    chief = Chief(oracle, "127.0.0.1:0", token="the-chiefs-secret").start()
    try:
        monkeypatch.setenv("HARNESS_ORACLE_TOKEN", "another-secret")
        for name, value in (("KERASTUNER_TUNER_ID", "tuner-test"), ("KERASTUNER_ORACLE_IP", ""),
                            ("KERASTUNER_ORACLE_PORT", "")):
            monkeypatch.setenv(name, value)  # the worker sets these for keras-tuner: gone after the test
        result = CliRunner().invoke(app, tiny_sweep_args(
            "feature-extraction", tiny_data, store_uri, "--role", "worker", "--oracle", f"127.0.0.1:{chief.port}",
            "--parent-run", parent, "--connect-timeout", "30"))
    finally:
        chief.stop()
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "turned it away: set HARNESS_ORACLE_TOKEN" in errors[0] and "Traceback" not in result.output
    assert [r.info.run_id for r in client.search_runs([exp])] == [parent]  # the worker logged nothing
