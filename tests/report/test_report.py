"""The cases a report must survive, after tiny sweeps of both methods on a synthetic 3-class set:
one method, one trial, hyperband, a missing data folder, sweeps named by run id, a bad experiment,
and `compare --report`. What a full report holds, and that its numbers are MLflow's and its
importances Optuna's, is checked on a `harness study` in tests/study/test_whole_study.py."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from conftest import finished_sweeps, one_error_line, tiny_sweep_args, trials_of
from harness.cli import app

# Slow step: the cases a report must survive, on a study of their own (the default suite checks the
# report itself on the `harness study` of tests/study/test_whole_study.py).
pytestmark = pytest.mark.slow
runner = CliRunner()
METHODS = ("feature-extraction", "fine-tune")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Both methods swept (4 trials each) on 3 synthetic classes."""
    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(root / "cache"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        data = write_synthetic(root / "three", per_class=6, size=40, classes=3)
        uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
        for method in METHODS:
            swept = runner.invoke(app, tiny_sweep_args(method, data, uri, "--max-trials", "4"))
            assert swept.exit_code == 0, swept.output
    return {"client": MlflowClient(tracking_uri=uri), "uri": uri, "root": root}


def _sweeps(client, experiment="three"):
    return finished_sweeps(client, experiment)


def _report(uri, out, *extra):
    result = runner.invoke(app, ["report", "--tracking-uri", uri, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join((out / "report.html").read_text().split())


def test_one_method_with_one_trial_and_its_data_gone(study, tmp_path):
    """No comparison (a kind=report run instead), no importance, no thumbnails: each said, no traceback."""
    data = shutil.copytree(study["root"] / "three", tmp_path / "solo")
    swept = runner.invoke(app, tiny_sweep_args("fine-tune", data, study["uri"], "--max-trials", "1"))
    assert swept.exit_code == 0, swept.output
    shutil.rmtree(data)
    html = _report(study["uri"], tmp_path / "out", "--experiment", "solo")
    assert "the comparison needs both methods" in html
    assert "needs at least 2 completed trials; this sweep has 1" in html
    assert "cannot check the data folder now" in html
    exp, sweeps = _sweeps(study["client"], "solo")
    (run,) = study["client"].search_runs([exp.experiment_id], "tags.kind = 'report'")
    assert run.info.status == "FINISHED" and run.data.tags["fine_tune_run"] == sweeps["fine-tune"].info.run_id
    assert "report/report.md" in {a.path for a in study["client"].list_artifacts(run.info.run_id, "report")}


def test_a_hyperband_sweep_says_which_trials_it_compares(study, tmp_path):
    data = shutil.copytree(study["root"] / "three", tmp_path / "bands")
    swept = runner.invoke(app, tiny_sweep_args("feature-extraction", data, study["uri"], "--tuner", "hyperband",
                                               "--max-trials", "1", "--epochs", "3"))
    assert swept.exit_code == 0, swept.output
    html = _report(study["uri"], tmp_path / "out", "--experiment", "bands")
    assert "trained for different budgets (epochs 1, 3)" in html
    assert "budget (epochs)" in html
    assert '<div class="thumbs">' in html and " · true: " in html  # the one winner's mistakes, from the folder


def test_sweeps_given_by_run_id(study, tmp_path):
    client = study["client"]
    exp, sweeps = _sweeps(client)
    fe = sweeps["feature-extraction"].info.run_id
    html = _report(study["uri"], tmp_path / "out", "--sweep", fe)
    assert "Only feature extraction was swept" in html
    (run,) = client.search_runs([exp.experiment_id], "tags.kind = 'report'")
    assert run.info.status == "FINISHED" and run.data.tags["feature_extraction_run"] == fe
    trial = trials_of(client, exp, sweeps["fine-tune"])[0].info.run_id
    one_error_line(["report", "--tracking-uri", study["uri"], "--sweep", trial], trial, "not the parent run of a sweep")


def test_a_bad_experiment_is_one_line(study):
    one_error_line(["report", "--tracking-uri", study["uri"], "--experiment", "no-such"], "no-such", "not found")


def test_compare_with_report_writes_it_into_the_comparison_it_just_logged(study, tmp_path):
    """`harness compare --report` (last in this file: it adds a second comparison run)."""
    client = study["client"]
    result = runner.invoke(app, ["compare", "--tracking-uri", study["uri"], "--experiment", "three", "--report"])
    assert result.exit_code == 0, result.output
    exp = client.get_experiment_by_name("three")
    newest = client.search_runs([exp.experiment_id], "tags.kind = 'comparison'",
                                order_by=["attributes.start_time DESC"])[0]
    assert newest.info.run_id in " ".join(result.output.split())
    logged = {a.path for a in client.list_artifacts(newest.info.run_id, "report")}
    assert {"report/report.html", "report/report.md"} <= logged
    assert (tmp_path / "reports" / "three" / "report.html").is_file()  # the default folder, in the working one


def test_no_thumbnails_lists_the_photos_both_winners_get_wrong_by_path(study, tmp_path):
    """For a report published without its photos: the same mistakes, by path, no image of them."""
    import csv

    client = study["client"]
    _, sweeps = _sweeps(client)
    predicted = []
    for method in METHODS:
        path = client.download_artifacts(sweeps[method].data.tags["best_run_id"], "predictions/test_predictions.csv")
        predicted.append({r["path"]: r for r in csv.DictReader(open(path))})
    both = sorted(p for p, r in predicted[0].items() if r["correct"] == "0" and predicted[1][p]["correct"] == "0")
    html = _report(study["uri"], tmp_path / "out", "--experiment", "three", "--no-thumbnails")
    assert '<div class="thumbs">' not in html and not (tmp_path / "out" / "thumbs").exists()
    assert f"{len(both)} of {len(predicted[0])} test images" in html
    for path in both:
        assert f"<td>{path}</td><td>{predicted[0][path]['true_class']}</td>" in html, path


def test_a_sweep_made_before_versions_were_recorded_says_so(study, tmp_path):
    client = study["client"]
    _, sweeps = _sweeps(client)
    client.delete_tag(sweeps["feature-extraction"].info.run_id, "versions")
    html = _report(study["uri"], tmp_path / "out", "--experiment", "three")
    assert "The feature extraction sweep does not record its versions" in html
    assert "<td>tensorflow</td><td>-</td>" in html  # its column is empty; fine-tuning's and the report's are not
