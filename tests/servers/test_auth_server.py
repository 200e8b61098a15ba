"""A real `harness server --auth` on a free loopback port (-m slow): no login, no data; the right
credentials sweep; a wrong password is one line; the generated password is kept 0600 and
appears nowhere else: no run, tag, param, artifact, database or log file."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from conftest import free_port, runs_of, tiny_sweep_args, wait_healthy

pytestmark = pytest.mark.slow


def _rest(url: str, headers: dict | None = None) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_authenticated_server_end_to_end(tiny_data, tmp_path, started, monkeypatch):
    from mlflow import MlflowClient

    from harness.servers import basic_auth_header

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    port, folder = free_port(), tmp_path / "server"
    uri = f"http://127.0.0.1:{port}"
    server = started("server", ["server", "--auth", "--port", str(port), "--backend-store-uri",
                                f"sqlite:///{folder / 'mlflow.db'}", "--workers", "1"])
    wait_healthy(uri, server)
    password_file = folder / "server-auth" / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    assert str(password_file) in started.log(server)

    search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _rest(search) == 401  # no login, no data
    assert _rest(search, {"Authorization": basic_auth_header("admin", "not-the-password")}) == 401
    assert _rest(search, {"Authorization": basic_auth_header("admin", password)}) == 200

    args = tiny_sweep_args("feature-extraction", tiny_data, uri, "--max-trials", "2", "--epochs", "1")
    right = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": password}
    sweep = started("sweep", args, env=right)
    assert sweep.wait(600) == 0, started.log(sweep)

    wrong = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "wrong-password-123"}
    worker = started("worker", [*args, "--role", "worker", "--oracle", f"127.0.0.1:{free_port()}",
                                "--connect-timeout", "5"], env=wrong)
    assert worker.wait(300) == 2
    lines = [line for line in started.log(worker).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: tracking server") and "rejected the login" in lines[0]
    assert "MLFLOW_TRACKING_PASSWORD" in lines[0] and uri in lines[0], lines
    nobody = started("compare", ["compare", "--tracking-uri", uri])
    assert nobody.wait(300) == 2 and "needs a login (HTTP 401)" in started.log(nobody)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    client = MlflowClient(tracking_uri=uri)
    parents, children = runs_of(client, "tiny")
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]  # nothing from the worker

    # The password is in its own file and nowhere else: not in any run ...
    for run in parents + children:
        text = json.dumps([run.info.run_name, run.data.tags, run.data.params, list(run.data.metrics)])
        assert password not in text
    # ... nor in any file the server, the sweep or the commands wrote (database, artifacts, logs).
    checked = 0
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != password_file:
            assert password.encode() not in path.read_bytes(), path
            checked += 1
    assert checked > 10 and any(p.name == "mlflow.db" for p in tmp_path.rglob("mlflow.db"))
