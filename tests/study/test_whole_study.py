"""`harness study`: both sweeps, compare and the report as one command; killed after its first
sweep and run again, it goes on without repeating that sweep (checked with MLflow's client)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import TINY_FLAGS
from harness.cli import app

runner = CliRunner()


def _parents(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.sweep = 'true'")


@pytest.mark.slow
def test_a_killed_study_resumes_without_repeating_its_finished_sweep(tiny_data, store_uri, client, tmp_path):
    args = ["study", "--data", str(tiny_data), "--tracking-uri", store_uri, *TINY_FLAGS, "--epochs", "1"]
    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if any(p.data.tags.get("method") == "feature-extraction" and p.info.status == "FINISHED"
               for p in _parents(client, "tiny")):
            break
        time.sleep(0.5)
    assert first.poll() is None, first.stdout.read().decode()[-2000:]
    os.killpg(first.pid, signal.SIGTERM)  # as Ctrl-C in its terminal would: the fine-tune sweep stops
    first.wait(timeout=120)
    (fe_before,) = [p for p in _parents(client, "tiny") if p.data.tags["method"] == "feature-extraction"]

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert f"feature-extraction: finished sweep {fe_before.info.run_id}" in " ".join(again.output.split())
    parents = _parents(client, "tiny")
    fe = [p for p in parents if p.data.tags["method"] == "feature-extraction"]
    ft_done = [p for p in parents if p.data.tags["method"] == "fine-tune" and p.info.status == "FINISHED"]
    assert [p.info.run_id for p in fe] == [fe_before.info.run_id] and len(ft_done) == 1
    exp = client.get_experiment_by_name("tiny")
    (comparison,) = client.search_runs([exp.experiment_id], "tags.kind = 'comparison'")
    assert comparison.data.tags["feature_extraction_run"] == fe_before.info.run_id
    assert comparison.data.tags["fine_tune_run"] == ft_done[0].info.run_id
    logged = {a.path for a in client.list_artifacts(comparison.info.run_id, "report")}
    assert "report/report.html" in logged
