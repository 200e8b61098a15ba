"""Shared fixtures: tiny synthetic photos, an isolated MLflow store and feature cache per test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data" / "cats_and_dogs_small"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_0.35_imagenet_no_top.weights.h5"


# The longest files of the default suite (tens of seconds each), run first: `-n 2 --dist loadfile`
# hands files out in collection order, so with these at the end one worker finished a minute
# after the other.
LONGEST_FIRST = ("study/test_whole_study.py", "serving/test_served_accuracy.py", "backbones/test_families.py",
                 "study/test_demo.py", "cli/test_readme.py", "training/test_streaming.py", "cli/test_sweep_cli.py",
                 "servers/test_quiet_servers.py", "backbones/test_weights.py", "study/test_api.py")


def pytest_collection_modifyitems(items):
    """Stable: the longest files first, every other file and every test within a file in its order."""
    def rank(item) -> int:
        path = item.nodeid.split("::")[0].removeprefix("tests/")
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """6 images per class and split, 40x40 JPEGs: enough to exercise every code path."""
    from harness.data._folders import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("data") / "tiny", per_class=6, size=40)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own feature cache and never touches the project's ./mlruns."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """One new store, made by harness's own creation path (MLflow's tables and every migration:
    1.7 s here), that each test's store starts as a copy of."""
    from harness.tracking import resolve_store

    db = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    resolve_store(f"sqlite:///{db}")
    return db


@pytest.fixture
def store_uri(tmp_path, empty_store) -> str:
    """An empty store of the test's own, as a user's is after their first command. Making a new
    one is tested where it matters: tests/tracking/test_store_creation.py, and every test that
    names its own (`harness demo`, the README block, `harness study`)."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(empty_store, db)
    return f"sqlite:///{db}"


@pytest.fixture
def unopened_store_uri(tmp_path) -> str:
    """A store nothing has made yet: for the tests that check bad input creates none."""
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


@pytest.fixture
def client(store_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store_uri)


TINY_FLAGS = ["--backbone", "vgg16", "--weights", "none", "--image-size", "32", "--epochs", "2",
              "--max-trials", "3", "--seed", "3"]


def tiny_sweep_args(method: str, data: Path, store_uri: str, *extra: str) -> list[str]:
    """A tiny sweep with the packaged default sweep file (no --config), flags overriding it. A
    repeated --backbone searches several, so one in `extra` replaces the tiny one."""
    tiny = TINY_FLAGS[2:] if "--backbone" in extra else TINY_FLAGS
    return ["sweep", method, "--data", str(data), "--tracking-uri", store_uri, *tiny, *extra]


def finished_sweeps(client, experiment: str):
    """(experiment, {method: its FINISHED sweep's parent run}) as MLflow's client reports them."""
    exp = client.get_experiment_by_name(experiment)
    parents = client.search_runs([exp.experiment_id], "tags.sweep = 'true' and attributes.status = 'FINISHED'")
    return exp, {p.data.tags["method"]: p for p in parents}


def trials_of(client, exp, parent):
    """A sweep's child runs (its trials, and a comparison's repeats), oldest first."""
    return client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                              order_by=["attributes.start_time ASC"])


def runs_of(client, experiment: str):
    """All runs of an experiment as MLflow itself reports them: (parents, children)."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()  # [state, ppid, ...]
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """Every live descendant of `pid`, read from /proc."""
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        stat = _proc_stat(int(entry)) if entry.isdigit() else None
        if stat:
            children.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if running([p])]


def running(pids) -> list[int]:
    """Those of `pids` that still run (a zombie has ended: it only waits to be reaped)."""
    return [p for p in pids if (stat := _proc_stat(p)) is not None and stat[0] != "Z"]


def wait_until_gone(pids, timeout: float = 60.0) -> list[int]:
    """Poll /proc until none of `pids` runs; returns those still running at the deadline."""
    import time

    deadline = time.monotonic() + timeout
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return running(pids)


def wait_healthy(url: str, proc, timeout: float = 240.0) -> None:
    """Until `url`/health answers; fails with the process's output if it exits first."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode} before answering")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout}s")


class Started:
    """Processes started by a test, each in its own session and log file; all killed at teardown."""

    def __init__(self, folder):
        self.folder, self.procs = folder, []

    def __call__(self, name, args, env=None):
        with open(self.folder / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})}, cwd=self.folder, start_new_session=True)
        proc.name = name
        self.procs.append(proc)
        return proc

    def log(self, proc) -> str:
        return (self.folder / f"{proc.name}.log").read_text(errors="replace")

    def kill_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


@pytest.fixture
def started(tmp_path):
    procs = Started(tmp_path)
    yield procs
    procs.kill_all()


def interrupt_trial(monkeypatch, trial_id: str, signum: int):
    """A real signal to this process at the start of one trial (keras-tuner's run_trial)."""
    from harness.tuning._tuner import TrackedTuner

    real = TrackedTuner.run_trial

    def run_trial(self, trial, *args, **kwargs):
        if trial.trial_id == trial_id and not getattr(self, "_signalled", False):
            self._signalled = True
            os.kill(os.getpid(), signum)
        return real(self, trial, *args, **kwargs)

    monkeypatch.setattr(TrackedTuner, "run_trial", run_trial)


def one_error_line(args: list[str], *expected: str) -> str:
    """`harness ARGS` through the CLI fails as bad input should: exit 2, no traceback, one line
    `error: ...` holding each of `expected`; returns that line."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]
