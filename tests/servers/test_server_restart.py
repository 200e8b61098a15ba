"""The tracking server goes away mid-sweep (`harness server` killed with SIGKILL): back within
the wait, the sweep goes on and loses nothing; gone for good, the sweep ends with one line,
its tuner state intact, and `--resume` finishes it once the server is back. (-m slow)"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from conftest import free_port, process_tree, runs_of, tiny_sweep_args, wait_healthy, wait_until_gone

pytestmark = pytest.mark.slow
EPOCHS, TRIALS = 3, 3
# A trial the server's loss must cut short: long enough (tiny epochs take tens of milliseconds)
# that it is still running when the server is killed, after it was seen logging its first epoch.
LONG_EPOCHS = 40


def _server(started, port, db):
    proc = started("server", ["server", "--port", str(port), "--backend-store-uri", f"sqlite:///{db}",
                              "--workers", "1"])
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc


def _kill(server) -> None:
    """SIGKILL `harness server`: its MLflow processes go with it (they hold the port)."""
    tree = process_tree(server.pid)
    server.kill()
    server.wait(30)
    assert wait_until_gone(tree) == []


def _wait_mid_trial(client, sweep, started, timeout=300):
    """Until some trial has logged an epoch and is still RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert sweep.poll() is None, started.log(sweep)
        exp = client.get_experiment_by_name("tiny")
        for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'") if exp else []:
            if "trial_id" in run.data.tags and run.data.metrics:
                return run
        time.sleep(0.2)
    pytest.fail(f"no trial got going:\n{started.log(sweep)}")


def _assert_whole(client, epochs=EPOCHS):
    """One FINISHED parent; each trial FINISHED exactly once with every epoch and artifact."""
    parents, children = runs_of(client, "tiny")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED", parents
    assert not [c for c in children if c.info.status == "RUNNING"]
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert Counter(c.data.tags["trial_id"] for c in finished) == Counter({str(i): 1 for i in range(TRIALS)})
    for child in finished:
        for key in ("loss", "val_accuracy"):
            assert [m.step for m in client.get_metric_history(child.info.run_id, key)] == list(range(epochs))
        assert "test_accuracy" in child.data.metrics
        paths = {a.path for folder in ("plots", "predictions") for a in client.list_artifacts(child.info.run_id, folder)}
        best = child.info.run_id == parents[0].data.tags["best_run_id"]
        # the best trial alone also carries the test confusion matrix
        assert paths == {"plots/curves.png", "predictions/test_predictions.csv"} | (
            {"plots/confusion_matrix.png"} if best else set())
    assert parents[0].data.tags["best_run_id"] in {c.info.run_id for c in finished}
    return parents[0], children


def test_a_server_restarted_within_the_wait_loses_nothing(tiny_data, tmp_path, started):
    from mlflow import MlflowClient

    port, db = free_port(), tmp_path / "server" / "mlflow.db"
    uri = f"http://127.0.0.1:{port}"
    server = _server(started, port, db)
    sweep = started("sweep", tiny_sweep_args("feature-extraction", tiny_data, uri, "--max-trials", str(TRIALS),
                                             "--epochs", str(EPOCHS)))
    client = MlflowClient(tracking_uri=uri)
    _wait_mid_trial(client, sweep, started)
    _kill(server)
    time.sleep(3)  # the sweep finds it gone
    _server(started, port, db)
    assert sweep.wait(600) == 0, started.log(sweep)
    _assert_whole(client)
    log = started.log(sweep)
    assert "is not answering; waiting up to" in log and "answers again" in log


def test_a_server_gone_for_good_ends_the_sweep_and_resume_finishes_it(tiny_data, tmp_path, started):
    from mlflow import MlflowClient

    port, db = free_port(), tmp_path / "server" / "mlflow.db"
    uri = f"http://127.0.0.1:{port}"
    server = _server(started, port, db)
    args = tiny_sweep_args("feature-extraction", tiny_data, uri, "--max-trials", str(TRIALS), "--epochs",
                           str(LONG_EPOCHS))
    sweep = started("sweep", args, env={"HARNESS_SERVER_WAIT": "5"})
    client = MlflowClient(tracking_uri=uri)
    victim = _wait_mid_trial(client, sweep, started)
    parent = victim.data.tags["mlflow.parentRunId"]
    _kill(server)
    assert sweep.wait(300) == 2, started.log(sweep)
    errors = [line for line in started.log(sweep).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stopped answering" in errors[0] and "--resume" in errors[0], errors
    assert "Traceback" not in started.log(sweep)
    assert (tmp_path / ".harness" / "tuner" / parent / "oracle.json").is_file()  # keras-tuner's state kept

    _server(started, port, db)
    resumed = started("resume", [*args, "--resume"])
    assert resumed.wait(600) == 0, started.log(resumed)
    whole, children = _assert_whole(client, LONG_EPOCHS)
    assert whole.info.run_id == parent
    first_try = client.get_run(victim.info.run_id)
    assert first_try.info.status == "KILLED"  # the attempt the server's loss cut short
