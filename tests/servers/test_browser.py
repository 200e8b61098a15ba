"""The MLflow UI and the report as a person sees them: `harness ui`, and a report opened from
disk, rendered by headless Chromium (-m browser).

Chromium is driven over its DevTools protocol (with aiohttp, which MLflow installs), so the test
can wait for what it checks, click, and take the screenshot for the README."""

import asyncio
import base64
import json
import os
import re
import shutil
import signal
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
DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")]
COLUMNS = ("best_val_accuracy", "test_accuracy", "val_accuracy", "units", "dropout", "learning_rate",
           "fine_tune_learning_rate")
GENAI_ONLY = ("Token Usage", "Detect Issues")  # the GenAI overview a fresh profile gets by default


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


def _stop_group(proc: subprocess.Popen, seconds: float = 60) -> None:
    """SIGTERM a process started with start_new_session=True and wait until its whole group is gone."""
    os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"{proc.args[0]} left processes behind after SIGTERM")


class Browser:
    """Headless Chromium with a fresh profile, one page, driven over the DevTools protocol."""

    def __init__(self, profile: Path, width: int = 1600, height: int = 900):
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and self.proc.poll() is None, "chromium did not start"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        self.ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._connect())
        self.next_id = 0

    async def _connect(self):
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.ws_url, max_msg_size=0)

    async def _call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads((await self.ws.receive()).data)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result", {})

    def call(self, method: str, **params):
        return self.loop.run_until_complete(self._call(method, **params))

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def text(self) -> str:
        return " ".join((self.js("document.body ? document.body.innerText : ''") or "").split())

    def open(self, url: str, *expected: str, seconds: float = 90) -> str:
        """Go to `url` and wait until the page shows every `expected` text; returns the page's text."""
        self.call("Page.navigate", url=url)
        return self.wait_for(*expected, seconds=seconds)

    def wait_for(self, *expected: str, seconds: float = 90) -> str:
        deadline = time.monotonic() + seconds
        while True:
            text = self.text()
            if all(e in text for e in expected) or time.monotonic() > deadline:
                return text
            time.sleep(0.5)

    def click(self, selector: str, seconds: float = 30) -> None:
        """Click the element `selector` finds, once it is there."""
        deadline = time.monotonic() + seconds
        script = f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (e) e.click(); return !!e; }})()"
        while not self.js(script):
            assert time.monotonic() < deadline, f"no {selector} on the page"
            time.sleep(0.5)

    def close_assistant(self) -> None:
        """MLflow opens its assistant panel on a profile's first visit; it covers a third of the page."""
        self.click('[data-component-id="mlflow.assistant.chat_panel.close"]')

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.loop.run_until_complete(self.ws.close())
        self.loop.run_until_complete(self.session.close())
        self.loop.close()
        _stop_group(self.proc)


@pytest.fixture
def browser(tmp_path):
    """A fresh browser profile, as a new user has."""
    opened = []

    def make(**size):
        profile = tmp_path / f"profile{len(opened)}"
        profile.mkdir()
        opened.append(Browser(profile, **size))
        return opened[-1]

    yield make
    for b in opened:
        b.close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory, tiny_data):
    """Both methods swept into a fresh store (feature extraction with enough trials to chart),
    and `harness ui` serving it on a free loopback port; returns its printed links."""
    tmp_path = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(tmp_path / "cache")
    for method, trials, epochs in (("feature-extraction", "8", "2"), ("fine-tune", "2", "1")):
        result = CliRunner().invoke(app, tiny_sweep_args(method, tiny_data, uri, "--max-trials", trials,
                                                         "--epochs", epochs))
        assert result.exit_code == 0, result.output
    os.environ.pop("HARNESS_CACHE_DIR") if old is None else os.environ.__setitem__("HARNESS_CACHE_DIR", old)
    port = _free_port()
    log = tmp_path / "ui.log"
    server = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--port", str(port), "--tracking-uri", uri],
                              stdout=open(log, "wb"), stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", 90)
        printed = log.read_text().splitlines()
        links = {label: url.strip() for label, url in zip(printed, printed[1:]) if url.startswith("  http")}
        yield port, uri, links
    finally:
        _stop_group(server)  # `harness ui`, the MLflow server and the workers it started


def test_printed_link_opens_the_model_training_view_with_the_sweep_columns(ui, browser):
    from mlflow import MlflowClient

    port, uri, links = ui
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    # the control: the experiment's plain address, as MLflow links it, lands in the GenAI view
    plain = browser().open(f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}", *GENAI_ONLY)
    assert all(g in plain for g in GENAI_ONLY) and "best_val_accuracy" not in plain
    (label,) = [k for k in links if k.endswith("sweeps and trials")]
    assert "workflowType=machine_learning" in links[label]
    b = browser(width=2400, height=1000)
    page = b.open(links[label], "feature-extraction · vgg16", "fine-tune · vgg16", "best_val_accuracy")
    assert "Model registry" in page and not any(g in page for g in GENAI_ONLY)
    b.close_assistant()  # the table draws only the columns in view
    page = b.wait_for(*COLUMNS, seconds=30)
    for column in COLUMNS:
        assert column in page, f"column {column} not shown"


def test_sweep_link_charts_hyperparameters_against_validation_accuracy(ui, browser):
    from mlflow import MlflowClient

    port, uri, links = ui
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    (fe,) = client.search_runs([exp.experiment_id], "tags.sweep = 'true' and tags.method = 'feature-extraction'")
    trials = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{fe.info.run_id}'")
    (label,) = [k for k in links if "feature-extraction" in k and "hyperparameters" in k]
    b = browser(width=1700, height=1150)
    page = b.open(links[label], "Hyperparameters vs best_val_accuracy", "Parallel Coordinates",
                  *(t.info.run_name for t in trials))
    for t in trials:
        assert t.info.run_name in page
    assert "fine-tune #" not in page  # only this sweep's trials
    b.close_assistant()
    b.click('[data-component-id="mlflow.experiment_page.shared_view.dismiss"]')
    time.sleep(3)
    shot = DOCS.parent / ".pytest-ui.png"
    b.screenshot(shot)
    assert shot.stat().st_size > 30_000
    DOCS.mkdir(exist_ok=True)
    shutil.move(shot, DOCS / "mlflow-ui.png")


def test_best_trial_pages_show_test_accuracy(ui, browser):
    from mlflow import MlflowClient

    port, uri, _ = ui
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    b = browser()
    for parent in client.search_runs([exp.experiment_id], "tags.sweep = 'true'"):
        best = client.get_run(parent.data.tags["best_run_id"])  # a trial, nested under its sweep
        url = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs/{best.info.run_id}"
        page = b.open(url, best.info.run_name, "test_accuracy")
        assert best.info.run_name in page
        shown = re.search(r"\btest_accuracy (\d+(?:\.\d+)?)", page)
        assert shown, "test_accuracy not on the run page"
        assert float(shown.group(1)) == pytest.approx(best.data.metrics["test_accuracy"], abs=1e-3)


def test_the_report_opens_offline_with_its_images_and_sortable_tables(browser, tmp_path, monkeypatch):
    """`harness demo` (which ends with its report) in a fresh folder, the report as MLflow holds it
    opened from disk as a person would; its first screen is the README's picture of a report."""
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("demo")
    (comparison,) = client.search_runs([exp.experiment_id], "tags.kind = 'comparison'")
    html = Path(client.download_artifacts(comparison.info.run_id, "report/report.html", str(tmp_path)))
    b = browser(width=1280, height=1000)
    page = b.open(html.as_uri(), "The answer", "What was run", "McNemar")
    assert "The answer" in page and "What was run" in page, page[:500]
    images = b.js("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 10 and all(done and width > 0 for done, width in images), images
    sweeps = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    trials = [t.info.run_id for p in sweeps
              for t in client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{p.info.run_id}'")]
    order = "Array.from(document.querySelectorAll('#trials tbody tr')).map(r => r.dataset.runId)"
    shown = b.js(order)
    assert sorted(shown) == sorted(trials)
    column = b.js("Array.from(document.querySelectorAll('#trials th')).findIndex(th => "
                  "th.textContent.startsWith('validation accuracy'))")
    b.click(f"#trials th:nth-child({column + 1})")
    values = b.js(f"Array.from(document.querySelectorAll('#trials tbody tr')).map(r => r.cells[{column}].dataset.sort)")
    numbers = [float(v) for v in values if v not in ("", None)]
    assert len(numbers) == len(trials) and numbers == sorted(numbers)
    assert set(b.js(order)) == set(shown)  # sorted, every row still there
    b.js("window.scrollTo(0, 0)")
    time.sleep(1)
    shot = DOCS.parent / ".pytest-report.png"
    b.screenshot(shot)
    assert shot.stat().st_size > 30_000
    shutil.move(shot, DOCS / "report.png")
