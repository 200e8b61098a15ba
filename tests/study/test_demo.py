"""`harness demo` out of the box: offline, default store, both methods, >= 3 finished trials each, and
numbers that teach: winners above chance with val and test close, rising curves, the comparison."""

import json
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from conftest import runs_of
from harness.cli import app


def test_demo_fills_the_default_store(tmp_path):
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "harness ui" in result.output and "McNemar" in result.output
    db = Path("mlruns/mlflow.db")  # the default store, relative to the working folder
    assert db.is_file() and Path("mlruns/artifacts").is_dir()
    client = MlflowClient(tracking_uri=f"sqlite:///{db.resolve()}")
    tops, children = runs_of(client, "demo")
    parents = [p for p in tops if p.data.tags.get("sweep") == "true"]
    assert [p.data.tags.get("kind") for p in tops if p not in parents] == ["comparison"]
    (comparison,) = [p for p in tops if p not in parents]  # the demo ends with its report, logged there
    assert {"report/report.html", "report/report.md"} <= {a.path for a in client.list_artifacts(
        comparison.info.run_id, "report")}
    assert Path("reports/demo/report.html").is_file() and "reports/demo/report.html" in " ".join(result.output.split())
    assert sorted(p.data.tags["method"] for p in parents) == ["feature-extraction", "fine-tune"]
    chance = 1 / len(json.loads(parents[0].data.tags["classes"]))
    for parent in parents:
        winner = client.get_run(parent.data.tags["best_run_id"]).data.metrics
        val, test = winner["best_val_accuracy"], winner["test_accuracy"]
        assert abs(val - test) <= 0.15 and min(val, test) > chance + 0.15, (parent.data.tags["method"], val, test)
        curve = [m.value for m in client.get_metric_history(parent.data.tags["best_run_id"], "accuracy")]
        assert curve[-1] > curve[0], curve  # the winner learned
        kids = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        finished = [c for c in kids if c.info.status == "FINISHED"]
        assert len(finished) >= 3
        for child in finished:
            assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) >= 4
            assert "test_accuracy" in child.data.metrics
            plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
            best = child.info.run_id == parent.data.tags["best_run_id"]
            assert plots == {"plots/curves.png"} | ({"plots/confusion_matrix.png"} if best else set())
            # artifacts live beside the database: one folder holds one store
            assert child.info.artifact_uri.startswith((tmp_path / "mlruns" / "artifacts").resolve().as_uri())
