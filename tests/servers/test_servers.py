"""`harness ui` and `harness server`: a taken port is one line before anything starts, the
server's host names and auth follow --host, and no server outlives the harness that started it
(Ctrl-C, SIGTERM, SIGKILL), checked in /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from typer.testing import CliRunner

from conftest import free_port, process_tree, running, wait_healthy, wait_until_gone
from harness.cli import app

runner = CliRunner()


def _one_line(args: list[str], expected: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    return lines[0]


@pytest.mark.parametrize("command", ["ui", "server"])
def test_a_taken_port_is_one_line_and_no_server_starts(command, store_uri):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store_flag = "--tracking-uri" if command == "ui" else "--backend-store-uri"
        before = process_tree(os.getpid())
        _one_line([command, "--port", str(port), store_flag, store_uri],
                  f"port {port} on 127.0.0.1 is already in use")
    assert process_tree(os.getpid()) == before  # nothing was started


@pytest.mark.parametrize("args, expected", [
    (["--host", "203.0.113.7"], "'203.0.113.7' is not an address of this machine"),  # TEST-NET-3
    (["--backend-store-uri", "http://127.0.0.1:1"], "must be a database"),
    (["--port", "70000"], "not a port number"),
])
def test_bad_server_flags_are_one_line(args, expected, store_uri):
    full = ["server", *args] if "--backend-store-uri" in args else ["server", "--backend-store-uri", store_uri, *args]
    _one_line(full, expected)


def test_server_names_and_auth_follow_the_host(tmp_path, store_uri, monkeypatch):
    from harness.servers import host_names, tracking_server_plan

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert set(host_names("127.0.0.1", [])) == {"localhost", "127.0.0.1", "[::1]"}
    lan = host_names("10.1.2.3", ["mlflow.example.org,other.example.org"])
    assert lan[0] == "10.1.2.3" and socket.gethostname() in lan and "localhost" not in lan
    assert {"mlflow.example.org", "other.example.org"} <= set(lan)

    open_plan = tracking_server_plan(store_uri, "0.0.0.0", free_port(), None, None, ["mlflow.example.org"])
    cmd = " ".join(open_plan.cmd)
    assert "--app-name basic-auth" in cmd  # on by default off loopback
    hosts = open_plan.cmd[open_plan.cmd.index("--allowed-hosts") + 1].split(",")
    assert {socket.gethostname(), "mlflow.example.org", "localhost"} <= set(hosts) and "*" not in hosts
    password_file = tmp_path / "store" / "server-auth" / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 12 and open_plan.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == password
    assert password not in cmd and not any(password in note for note in open_plan.notes)
    assert str(password_file) in open_plan.notes[0]
    assert "MLFLOW_TRACKING_PASSWORD" not in open_plan.env  # client credentials stay with clients

    unguarded = tracking_server_plan(store_uri, "0.0.0.0", free_port(), None, False, [])
    assert "basic-auth" not in unguarded.cmd and unguarded.notes[0].startswith("warning: no authentication")
    local = tracking_server_plan(store_uri, "127.0.0.1", free_port(), None, None, [])
    assert "basic-auth" not in local.cmd and local.notes == []
    forced = tracking_server_plan(store_uri, "127.0.0.1", free_port(), None, True, [])
    assert "basic-auth" in forced.cmd and forced.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == password  # kept


def test_a_short_admin_password_is_refused(store_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "short")
    _one_line(["server", "--auth", "--port", str(free_port()), "--backend-store-uri", store_uri],
              "needs at least 12")


def _start(args, tmp_path, name="harness"):
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,  # so a stray group can be cleaned up below
                            # as from a terminal: a hang-up ends it (under `nohup` it would be ignored)
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))


@pytest.mark.slow
@pytest.mark.parametrize("command, signum, code, group", [
    ("ui", signal.SIGINT, 0, False), ("ui", signal.SIGTERM, 0, False), ("ui", signal.SIGKILL, -9, False),
    ("server", signal.SIGKILL, -9, False), ("server", signal.SIGKILL, -9, True), ("ui", signal.SIGHUP, -1, True)])
def test_no_server_outlives_harness(command, signum, code, group, tmp_path, store_uri):
    """`group`: the signal goes to harness's whole process group, as a terminal hanging up sends it."""
    port = free_port()
    store_flag = "--tracking-uri" if command == "ui" else "--backend-store-uri"
    extra = ["--workers", "1"] if command == "server" else []
    proc = _start([command, "--port", str(port), store_flag, store_uri, *extra], tmp_path)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        tree = process_tree(proc.pid)
        assert len(tree) >= 3, tree  # mlflow server, uvicorn, the watchdog
        os.killpg(proc.pid, signum) if group else os.kill(proc.pid, signum)
        assert proc.wait(60) == code, (tmp_path / "harness.log").read_text()
        assert wait_until_gone(tree) == [], f"still running: {running(tree)}"
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
