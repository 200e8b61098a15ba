"""`harness ui` and `harness server` print harness's own lines only: the server's own output
(MLflow's notes, Starlette's warning, uvicorn's start-up and access lines) goes to the log file
named in one line, or with `--verbose` to the terminal; a server that dies shows the end
of its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest
from typer.testing import CliRunner

from conftest import free_port, process_tree, running, wait_healthy, wait_until_gone
from harness.cli import app

SERVER_WORDS = ("Registry store URI", "site-packages", "Warning", "uvicorn", "Uvicorn", "INFO:", "GET /")


def _run_ui(tmp_path, *flags: str) -> tuple[int, list[str]]:
    """`harness [flags] ui` on a fresh store in `tmp_path` (the working folder), one page fetched
    (an access line), then Ctrl-C (SIGINT); its terminal's non-empty lines."""
    port, terminal = free_port(), tmp_path / "terminal.txt"
    with open(terminal, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "harness", *flags, "ui", "--port", str(port)], cwd=tmp_path,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        tree = process_tree(proc.pid)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, terminal.read_text()
        assert wait_until_gone(tree) == [], f"still running: {running(tree)}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return port, [line for line in terminal.read_text().splitlines() if line.strip()]


def test_ui_prints_only_its_own_lines_and_the_server_writes_its_log(tmp_path):
    port, lines = _run_ui(tmp_path)
    log = tmp_path / "mlruns" / "logs" / f"ui-{port}.log"
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert lines == [f"the MLflow UI for {store} at http://127.0.0.1:{port}  (Ctrl-C stops it)", f"server log: {log}"]
    assert not [line for line in lines if any(word in line for word in SERVER_WORDS)]
    text = log.read_text()
    assert "Uvicorn running on" in text and '"GET /health HTTP' in text and '"GET / HTTP' in text, text


@pytest.mark.slow  # a second real server: the fast check of --verbose is below
def test_verbose_shows_the_servers_own_lines(tmp_path):
    _, lines = _run_ui(tmp_path, "--verbose")
    text = "\n".join(lines)
    assert lines[0].startswith("the MLflow UI for ") and "Uvicorn running on" in text and '"GET / HTTP' in text
    assert "server log:" not in text and not (tmp_path / "mlruns" / "logs").exists()


def _server_plan(monkeypatch, script: str) -> None:
    """`harness ui` starts `script` (python, its port in sys.argv[1]) in place of MLflow's server."""
    from harness.servers import _plans

    def command(uri, host, port, **_):
        return [sys.executable, "-c", textwrap.dedent(script), str(port)]

    monkeypatch.setattr(_plans, "server_command", command)


def test_a_server_that_dies_at_start_up_says_why(tmp_path, monkeypatch):
    _server_plan(monkeypatch, """
        import sys
        print("Registry store URI not provided. Using backend store URI.")
        sys.exit("sqlite3.OperationalError: database is locked")""")
    port = free_port()
    result = CliRunner().invoke(app, ["ui", "--port", str(port)])
    assert result.exit_code == 2, result.output
    log = tmp_path / "mlruns" / "logs" / f"ui-{port}.log"
    assert f"server log: {log}" in result.output
    error = result.output[result.output.index("error: "):]
    assert "exited (code 1) before it answered" in error and f"the end of its log {log}:" in error
    assert "  sqlite3.OperationalError: database is locked" in error.splitlines(), error


@pytest.mark.parametrize("where", ["app", "command"])  # `harness --verbose ui` and `harness ui --verbose`
def test_verbose_is_accepted_and_the_server_writes_to_the_terminal(tmp_path, monkeypatch, capfd, where):
    import harness._quiet

    monkeypatch.setattr(harness._quiet, "verbose", lambda: None)  # TensorFlow's quiet start-up: not ours to undo
    _server_plan(monkeypatch, """
        import sys
        sys.exit("sqlite3.OperationalError: database is locked")""")
    args = ["ui", "--port", str(free_port())]
    result = CliRunner().invoke(app, ["--verbose", *args] if where == "app" else [*args, "--verbose"])
    assert result.exit_code == 2, result.output
    assert "server log:" not in result.output and "before it answered; its output is above" in result.output
    assert "database is locked" in capfd.readouterr().err  # the server's own stderr: ours
    assert not (tmp_path / "mlruns" / "logs").exists()


def test_a_server_that_stops_by_itself_says_why(monkeypatch):
    _server_plan(monkeypatch, """
        import http.server, sys
        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).handle_request()
        sys.exit("worker died: out of memory")""")
    result = CliRunner().invoke(app, ["ui", "--port", str(free_port())])
    assert result.exit_code == 2, result.output
    assert "stopped by itself (exit code 1)" in result.output, result.output
    assert "  worker died: out of memory" in result.output.splitlines(), result.output


def test_a_taken_port_starts_nothing_and_writes_no_log(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(app, ["ui", "--port", str(taken.getsockname()[1])])
    assert result.exit_code == 2 and result.output.startswith("error: port "), result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "mlruns" / "logs").exists()
