"""MLflow's own failures at the command's boundary: one line naming the store and what to do,
exit 2, no traceback, and the store exactly as it was (checked through MLflow's client)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import free_port, one_error_line, tiny_sweep_args


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _everything(client) -> list:
    """Every experiment and run in the store, deleted ones included, as MLflow reports them."""
    from mlflow.entities import ViewType

    exps = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs([e.experiment_id for e in exps], run_view_type=ViewType.ALL) if exps else []
    return sorted([(e.experiment_id, e.name, e.lifecycle_stage) for e in exps]) + sorted(
        (r.info.run_id, r.info.status, r.info.lifecycle_stage, r.info.end_time) for r in runs)


@pytest.mark.parametrize("content, expected", [
    (b"not a database, just text\n" * 10, "is not a usable database"),
    (None, "is a database of something else"),  # another program's sqlite file
])
def test_a_store_file_that_is_not_mlflows(tiny_data, tmp_path, content, expected):
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("create table invoices (id integer, amount real)")
            db.execute("insert into invoices values (1, 9.5)")
    else:
        path.write_bytes(content)
    before = _digest(path)
    uri = f"sqlite:///{path}"
    one_error_line(tiny_sweep_args("feature-extraction", tiny_data, uri), str(path), expected, "--tracking-uri")
    one_error_line(["compare", "--tracking-uri", uri], expected)
    one_error_line(["ui", "--tracking-uri", uri, "--port", str(free_port())], expected)
    assert _digest(path) == before


def test_an_out_of_date_store_says_how_to_upgrade(tmp_path, client):
    import shutil

    client.search_experiments()  # creates the tables
    path = tmp_path / "old" / "mlflow.db"  # a copy: MLflow checks a store's schema once per process
    path.parent.mkdir()
    shutil.copy(tmp_path / "store" / "mlflow.db", path)
    with sqlite3.connect(path) as db:
        db.execute("update alembic_version set version_num = '451aebb31d03'")  # an old MLflow's schema
    before = _digest(path)
    one_error_line(["compare", "--tracking-uri", f"sqlite:///{path}"], "out-of-date database schema", "mlflow db upgrade")
    assert _digest(path) == before


@pytest.fixture
def deleted(client, store_uri):
    """Experiment 'tiny' with one finished run, deleted as in the MLflow UI."""
    exp = client.create_experiment("tiny")
    run = client.create_run(exp, run_name="earlier")
    client.set_terminated(run.info.run_id, "FINISHED")
    client.delete_experiment(exp)
    return exp


@pytest.mark.slow  # a sweep, then the store changed under it: CI's slow step
def test_a_deleted_experiment_says_how_to_restore_it_or_pick_another(tiny_data, store_uri, client, deleted):
    before = _everything(client)
    line = one_error_line(tiny_sweep_args("feature-extraction", tiny_data, store_uri),
                     "experiment 'tiny'", "was deleted", f"mlflow experiments restore --experiment-id {deleted}",
                     "--experiment NAME")
    one_error_line(["compare", "--experiment", "tiny", "--tracking-uri", store_uri], "was deleted")
    assert _everything(client) == before
    # The advice works as printed.
    uri, args = re.search(r"`MLFLOW_TRACKING_URI=(\S+) mlflow ([^`]+)`", line).groups()
    done = subprocess.run([sys.executable, "-m", "mlflow", *args.split()], capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 0, done.stderr
    assert client.get_experiment(deleted).lifecycle_stage == "active"


@pytest.mark.parametrize("name, expected", [("x" * 257, "257 characters long; MLflow stores at most 256"),
                                            ("   ", "experiment name is empty")])
def test_an_experiment_name_mlflow_refuses_is_caught_before_anything_runs(tiny_data, store_uri, client,
                                                                          name, expected):
    client.search_experiments()
    before = _everything(client)
    one_error_line(tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--experiment", name), expected)
    assert _everything(client) == before


def test_registered_model_names_are_checked_as_mlflow_would():
    from harness.errors import HarnessError
    from harness.tracking._errors import check_registered_model_name

    check_registered_model_name("cats-vs-dogs winner")
    for bad, text in (("a/b", "'/' or ':'"), ("a:b", "'/' or ':'"), ("", "empty"), ("..", "file paths"),
                      ("m" * 300, "at most 256")):
        with pytest.raises(HarnessError, match=text):
            check_registered_model_name(bad)


def test_a_store_that_went_away_is_waited_for_then_given_up_on(monkeypatch):
    """The policy the slow server-restart tests exercise end to end, on a stand-in request."""
    import requests

    from harness.errors import StoreUnavailable
    from harness.tracking._errors import Patience

    monkeypatch.setattr("harness.tracking._errors.time.sleep", lambda s: None)
    heard, failures = [], iter([True, True, False])

    def request():
        if next(failures):
            raise requests.exceptions.ConnectionError("Max retries exceeded (Connection refused)")
        return "answer"

    patience = Patience("http://server:5000", wait=60, on_wait=heard.append)
    with pytest.raises(Exception, match="cannot reach tracking store http://server:5000 .connection refused"):
        patience.call(request)  # never answered yet: fail at once, no waiting
    patience.reached = True
    assert patience.call(request) == "answer"
    assert [m.split(";")[0] for m in heard] == ["tracking store http://server:5000 is not answering",
                                               "tracking store http://server:5000 answers again"]

    def gone():
        raise requests.exceptions.ConnectionError("Connection refused")

    patience.wait = 0.05
    with pytest.raises(StoreUnavailable, match="stopped answering .* --resume"):
        patience.call(gone)
    with pytest.raises(StoreUnavailable):  # the clean-up afterwards tries once, same line
        patience.call(gone)


@pytest.mark.parametrize("status, body, user, expected", [
    (401, "You are not authenticated.", None, "needs a login (HTTP 401): set MLFLOW_TRACKING_USERNAME and"),
    (401, "You are not authenticated.", "ann", "rejected the login of user 'ann' (HTTP 401)"),
    (403, "Permission denied", "ann", "user 'ann' may not do this (HTTP 403)"),
    (403, "Invalid Host header - possible DNS rebinding attack detected", "ann", "--allowed-hosts server:5000"),
])
def test_a_server_that_refuses_names_the_variables_or_flag_to_fix(status, body, user, expected, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED

    from harness.tracking._errors import classify

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    if user:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "some-password")
    exc = MlflowException(f"API request to endpoint /api/2.0/mlflow/runs/create failed with error code {status} "
                          f"!= 200. Response body: '{body}'",
                          error_code=UNAUTHENTICATED if status == 401 else PERMISSION_DENIED)
    error = classify(exc, "http://server:5000")
    assert expected in str(error) and "\n" not in str(error)
