"""Two sweeps starting at the same moment into a brand-new sqlite store: one process makes
MLflow's tables (under mlflow.db.lock), the other waits and finds them made; both go on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROUNDS = 3

# One process: imports done first (seconds), then for each round it waits at the barrier (a file),
# opens that round's new store through harness's own code and creates an experiment in it.
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from harness.tracking import Tracker, resolve_store
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (imported before the barrier too)

    folder, name, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    (folder / f"ready-{name}").touch()
    for i in range(rounds):
        while not (folder / f"go-{i}").exists():
            time.sleep(0.001)
        tracker = Tracker(resolve_store(f"sqlite:///{folder / str(i) / 'mlflow.db'}"))
        tracker.client.create_experiment(f"sweep-{name}")
        (folder / f"done-{i}-{name}").touch()
""")


def _wait_for(paths: list[Path], procs, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        failed = [p for p in procs if p.poll() not in (None, 0)]
        assert not failed and time.monotonic() < deadline, [p.communicate()[0] for p in failed] or "timed out"
        time.sleep(0.01)


def test_two_processes_opening_a_new_sqlite_store_at_once_both_succeed(tmp_path):
    from mlflow import MlflowClient

    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), name, str(ROUNDS)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in ("a", "b")]
    try:
        _wait_for([tmp_path / "ready-a", tmp_path / "ready-b"], procs, 180)
        for i in range(ROUNDS):
            (tmp_path / f"go-{i}").touch()  # both were spinning on this: they start within a millisecond
            _wait_for([tmp_path / f"done-{i}-a", tmp_path / f"done-{i}-b"], procs, 120)
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    assert [p.returncode for p in procs] == [0, 0], outputs
    for i in range(ROUNDS):
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / str(i) / 'mlflow.db'}")
        names = {e.name for e in client.search_experiments()}
        assert {"sweep-a", "sweep-b"} <= names, names
        assert (tmp_path / str(i) / "mlflow.db.lock").exists()


def test_an_existing_store_is_opened_as_before(tmp_path):
    """Tables made once; opening again neither remakes nor touches them."""
    from harness.tracking import Tracker, resolve_store

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    tracker = Tracker(resolve_store(uri))
    exp = tracker.client.create_experiment("kept")
    before = (tmp_path / "store" / "mlflow.db").read_bytes()
    again = Tracker(resolve_store(uri))
    assert again.client.get_experiment(exp).name == "kept"
    assert (tmp_path / "store" / "mlflow.db").read_bytes() == before
