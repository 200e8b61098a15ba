"""Two sweeps at once on one store (two terminals) both finish with all their runs intact."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app


@pytest.mark.slow  # a second Python + TensorFlow start: ~40 s on 2 busy cores
def test_the_same_sweep_command_twice_at_once_each_get_their_own_parent(tiny_data, store_uri, client, tmp_path):
    # The second command starts while the first one's sweep is live: it must neither resume it
    # nor mark its running trial KILLED, but run a sweep of its own beside it.
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "2", "--max-trials", "2")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not (client.get_experiment_by_name("tiny") and runs_of(client, "tiny")[1]):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
        time.sleep(0.2)  # until the first sweep has a trial running
    second = CliRunner().invoke(app, args)  # the second terminal
    output = first.communicate(timeout=240)[0]
    assert second.exit_code == 0, second.output
    assert first.returncode == 0, output
    parents, children = runs_of(client, "tiny")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    older, newer = sorted(parents, key=lambda p: p.info.start_time)
    assert newer.info.start_time < older.info.end_time  # they really ran at the same time
    for parent in parents:
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert sorted(c.data.tags["trial_id"] for c in mine) == ["0", "1"]
        assert {c.info.status for c in mine} == {"FINISHED"}
        assert parent.data.tags["best_run_id"] in {c.info.run_id for c in mine}
    assert len(children) == 4
