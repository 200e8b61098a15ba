"""The MLflow UI as a person sees it: `harness ui` rendered by headless Chromium (-m browser)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[1] / "docs"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def _chromium(tmp_path: Path, url: str, *action: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=2400,1300", "--hide-scrollbars",
           "--virtual-time-budget=30000", *action, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.fixture
def ui(tmp_path, tiny_data):
    """Both methods swept into a fresh store, and `harness ui` serving it on a free loopback port."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    for method in ("feature-extraction", "fine-tune"):
        result = CliRunner().invoke(app, tiny_sweep_args(method, tiny_data, uri, "--max-trials", "2",
                                                         "--epochs", "1"))
        assert result.exit_code == 0, result.output
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--port", str(port), "--tracking-uri", uri],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", 90)
        yield port, uri
    finally:
        os.killpg(server.pid, 15)  # the server and the workers it started
        server.wait(timeout=30)


def _text(dom: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def test_ui_shows_both_methods_runs_and_test_accuracy(ui, tmp_path):
    from mlflow import MlflowClient

    port, uri = ui
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    base = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs"
    page = _text(_chromium(tmp_path, base, "--dump-dom").stdout)
    assert "feature-extraction · vgg16" in page and "fine-tune · vgg16" in page
    shot = tmp_path / "ui.png"
    _chromium(tmp_path, base, f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000
    DOCS.mkdir(exist_ok=True)
    shutil.copy(shot, DOCS / "mlflow-ui.png")
    for parent in client.search_runs([exp.experiment_id], "tags.sweep = 'true'"):
        best = client.get_run(parent.data.tags["best_run_id"])  # a trial, nested under its sweep
        page = _text(_chromium(tmp_path, f"{base}/{best.info.run_id}", "--dump-dom").stdout)
        assert best.info.run_name in page
        shown = re.search(r"\btest_accuracy (\d+(?:\.\d+)?)", page)
        assert shown, "test_accuracy not on the run page"
        assert float(shown.group(1)) == pytest.approx(best.data.metrics["test_accuracy"], abs=1e-3)
