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


@pytest.mark.slow  # two Python + TensorFlow processes
def test_both_methods_started_at_the_same_instant_on_a_new_store_then_compare(tiny_data, tmp_path):
    # Two terminals, one per method, into a store that does not exist yet: MLflow's table creation
    # races unless harness serializes it.
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    go = tmp_path / "go"
    start = ("import pathlib, runpy, sys, time\n"
             "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.01)\n"
             "sys.argv = ['harness', *sys.argv[2:]]\n"
             "runpy.run_module('harness', run_name='__main__')\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, "-c", start, str(go),
                               *tiny_sweep_args(method, tiny_data, store, "--max-trials", "1", "--epochs", "1")],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for method in ("feature-extraction", "fine-tune")]
    time.sleep(8)  # both interpreters up and waiting (harness and TensorFlow imported lazily)
    go.touch()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    parents, _ = runs_of(MlflowClient(tracking_uri=store), "tiny")
    assert sorted(p.data.tags["method"] for p in parents) == ["feature-extraction", "fine-tune"]
    compared = CliRunner().invoke(app, ["compare", "--tracking-uri", store])
    assert compared.exit_code == 0, compared.output
    assert "McNemar" in compared.output


@pytest.mark.slow  # a real process, as a user runs it
def test_a_cache_folder_that_is_a_file_is_one_line(tiny_data, store_uri, tmp_path):
    (tmp_path / "cache-file").write_text("not a folder")
    # as a user runs it: harness keeps TensorFlow's start-up lines off the terminal itself
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["HARNESS_CACHE_DIR"] = str(tmp_path / "cache-file")
    done = subprocess.run([sys.executable, "-m", "harness", *tiny_sweep_args("fine-tune", tiny_data, store_uri)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [f"error: HARNESS_CACHE_DIR={tmp_path / 'cache-file'} is a file, not a folder: point it at a folder"]
