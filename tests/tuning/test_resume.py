"""Interrupted sweeps: SIGKILL, SIGTERM and Ctrl-C leave nothing RUNNING, and the same command resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import interrupt_trial, runs_of, tiny_sweep_args
from harness.cli import app

runner = CliRunner()
TIMEOUT = 240


def _launch(args: list[str], cwd) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_finished_child(client, experiment: str, proc: subprocess.Popen) -> None:
    """Poll the store, as a user watching the UI would, until one trial has FINISHED."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        if client.get_experiment_by_name(experiment) is not None:
            _, children = runs_of(client, experiment)
            if any(c.info.status == "FINISHED" for c in children):
                return
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no trial finished in time")


def _metrics_of(client, run_id: str) -> dict:
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)]
            for k in ("loss", "val_accuracy", "test_accuracy")}


def _assert_complete(client, experiment: str, max_trials: int):
    """One parent, FINISHED, with exactly one FINISHED child per trial id; nothing RUNNING."""
    parents, children = runs_of(client, experiment)
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.tags["trial_id"] for c in finished) == [str(i) for i in range(max_trials)]
    assert not [r for r in parents + children if r.info.status == "RUNNING"]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    return parents[0], children


@pytest.mark.slow  # a real process killed mid-sweep
def test_sigkill_then_the_same_command_resumes(tiny_data, store_uri, client, tmp_path):
    # enough epochs that the sweep is still running when the poll below sees its first finished trial
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "12")
    proc = _launch(args, tmp_path)
    _wait_for_finished_child(client, "tiny", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(TIMEOUT)
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "RUNNING"  # what MLflow is left with after kill -9
    first = next(c for c in children if c.info.status == "FINISHED")
    before = _metrics_of(client, first.info.run_id)

    rerun = runner.invoke(app, args)  # the same command, in this process to save a TF import
    assert rerun.exit_code == 0, rerun.output
    parent_after, children_after = _assert_complete(client, "tiny", 3)
    assert parent_after.info.run_id == parent.info.run_id
    assert client.get_run(first.info.run_id).info.status == "FINISHED"
    assert _metrics_of(client, first.info.run_id) == before
    stale = [c for c in children_after if c.info.status != "FINISHED"]
    assert all(c.info.status == "KILLED" for c in stale)
    assert len(children_after) == 3 + len(stale)


@pytest.mark.slow  # two sweeps: CI's slow step
def test_sigterm_ends_runs_killed_and_the_sweep_resumes(tiny_data, store_uri, client, monkeypatch):
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "1")
    with monkeypatch.context() as patched:  # undone on exit; the test's own env and folder stay
        interrupt_trial(patched, "1", signal.SIGTERM)
        result = runner.invoke(app, args)
    assert result.exit_code == 143, result.output
    assert "interrupted" in result.output and "Traceback" not in result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "KILLED"
    assert sorted((c.data.tags["trial_id"], c.info.status) for c in children) == [
        ("0", "FINISHED"), ("1", "KILLED")]

    resumed = runner.invoke(app, args + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    parent_after, children_after = _assert_complete(client, "tiny", 3)
    assert parent_after.info.run_id == parent.info.run_id
    assert len(children_after) == 4  # trial 1 ran twice: KILLED, then FINISHED


@pytest.mark.slow  # two sweeps
def test_finished_sweep_is_not_resumed(tiny_data, store_uri, client):
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "1", "--max-trials", "1")
    assert runner.invoke(app, args).exit_code == 0
    refused = runner.invoke(app, args + ["--resume"])
    assert refused.exit_code == 2
    assert "nothing to resume" in refused.output and "--fresh" in refused.output
    again = runner.invoke(app, args)  # a finished sweep has nothing left: the command starts anew
    assert again.exit_code == 0, again.output
    parents, _ = runs_of(client, "tiny")
    assert [p.info.status for p in parents] == ["FINISHED", "FINISHED"]


@pytest.mark.slow  # two sweeps
def test_ctrl_c_then_fresh_starts_a_new_sweep_beside_the_interrupted_one(tiny_data, store_uri, client,
                                                                          monkeypatch):
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "1", "--max-trials", "2")
    with monkeypatch.context() as patched:
        interrupt_trial(patched, "1", signal.SIGINT)
        result = runner.invoke(app, args)
    assert result.exit_code == 130 and "interrupted" in result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "KILLED"
    assert sorted(c.info.status for c in children) == ["FINISHED", "KILLED"]
    assert runner.invoke(app, args + ["--fresh"]).exit_code == 0
    parents, _ = runs_of(client, "tiny")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]
    assert runner.invoke(app, args + ["--fresh", "--resume"]).exit_code == 2


def test_sweep_key_is_the_resolved_configuration_not_the_path(tmp_path):
    import dataclasses
    import shutil

    from harness import config as config
    from harness.backbones._registry import build_base
    from harness.data._folders import scan, write_synthetic
    from harness.tuning._resume import sweep_key

    data = write_synthetic(tmp_path / "a" / "photos", per_class=2, size=16)
    copy = shutil.copytree(data, tmp_path / "b" / "photos")
    weights = tmp_path / "w.weights.h5"
    build_base("vgg16", 32, "none").save_weights(weights)
    cfg = config.parse({"data": str(data), "weights": str(weights), "image_size": 32}, "fine-tune")
    key = sweep_key(cfg, scan(data).fingerprint)
    assert sweep_key(dataclasses.replace(cfg, data=str(copy)), scan(copy).fingerprint) == key
    for change in ({"max_trials": 11}, {"seed": 1}, {"experiment": "other"},
                   {"space": dataclasses.replace(cfg.space, dropout=config.Range(0.0, 0.5, 0.5))}):
        assert sweep_key(dataclasses.replace(cfg, **change), scan(data).fingerprint) != key
    (copy / "test" / "dogs" / "dog.0.jpg").unlink()
    assert sweep_key(cfg, scan(copy).fingerprint) != key
    build_base("vgg16", 32, "none").save_weights(weights)  # new random weights, same path
    assert sweep_key(cfg, scan(data).fingerprint) != key
