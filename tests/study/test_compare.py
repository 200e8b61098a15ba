"""`harness compare` and `harness predict` after two tiny sweeps; checks read MLflow through its own client."""

import csv
import io
import json

import numpy as np
import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app

runner = CliRunner()
# CI's slow step (.ci/run) runs these; the default suite compares in tests/study/test_multiclass.py
pytestmark = pytest.mark.slow
METHODS = ("feature-extraction", "fine-tune")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Both methods swept on the same tiny photos into one store; then one compare with 2 repeats."""
    import os

    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("compare")
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(root / "cache")
    data = write_synthetic(root / "pets", per_class=6, size=40)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    for method in METHODS:
        result = runner.invoke(app, tiny_sweep_args(method, data, uri, "--max-trials", "2", "--epochs", "1"))
        assert result.exit_code == 0, result.output
    compared = runner.invoke(app, ["compare", "--tracking-uri", uri, "--repeats", "2"])
    os.environ.pop("HARNESS_CACHE_DIR") if old is None else os.environ.__setitem__("HARNESS_CACHE_DIR", old)
    return MlflowClient(tracking_uri=uri), uri, data, compared


def _sweeps(client):
    exp = client.get_experiment_by_name("pets")
    parents = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    return exp, {p.data.tags["method"]: p for p in parents}


def _predictions(client, run_id):
    path = client.download_artifacts(run_id, "predictions/test_predictions.csv")
    return list(csv.DictReader(io.StringIO(open(path).read())))


def _comparisons(client, exp):
    return client.search_runs([exp.experiment_id], "tags.kind = 'comparison'",
                              order_by=["attributes.start_time DESC"])


def test_compare_reports_ci_difference_and_mcnemar(store):
    client, _, _, compared = store
    assert compared.exit_code == 0, compared.output
    text = " ".join(compared.output.split())
    assert "Wilson" in text and "McNemar" in text and "p =" in text
    exp, sweeps = _sweeps(client)
    (comparison,) = _comparisons(client, exp)
    assert comparison.info.status == "FINISHED"
    assert "sweep" not in comparison.data.tags
    names = {a.path for a in client.list_artifacts(comparison.info.run_id, "comparison")}
    assert names == {f"comparison/comparison.{ext}" for ext in ("md", "json", "png")}
    report = json.load(open(client.download_artifacts(comparison.info.run_id, "comparison/comparison.json")))
    outcomes = {}
    for method, parent in sweeps.items():
        best = client.get_run(parent.data.tags["best_run_id"])
        got = report["methods"][method]
        assert got["best_run_id"] == best.info.run_id
        assert got["test_accuracy"] == best.data.metrics["test_accuracy"]
        assert got["val_accuracy"] == best.data.metrics["best_val_accuracy"]
        assert got["ci_low"] <= got["test_accuracy"] <= got["ci_high"] and got["ci_high"] - got["ci_low"] > 0.1
        assert got["trials"] == 2 and got["sweep_seconds"] == parent.data.metrics["sweep_seconds"]
        assert got["hyperparameters"]["units"] == best.data.params["units"]
        outcomes[method] = [int(r["correct"]) for r in _predictions(client, best.info.run_id)]
    fe, ft = (np.array(outcomes[m]) for m in METHODS)
    only_fe, only_ft = int(np.sum((fe == 1) & (ft == 0))), int(np.sum((fe == 0) & (ft == 1)))
    assert (report["only_fe_right"], report["only_ft_right"]) == (only_fe, only_ft)
    expected_p = binomtest(only_fe, only_fe + only_ft, 0.5).pvalue if only_fe + only_ft else 1.0
    assert report["mcnemar_p"] == pytest.approx(expected_p)
    assert report["difference"] == pytest.approx(ft.mean() - fe.mean())
    assert comparison.data.metrics["mcnemar_p"] == pytest.approx(expected_p)


def test_repeats_are_logged_under_the_comparison(store):
    client, _, _, _ = store
    exp, _ = _sweeps(client)
    comparison = _comparisons(client, exp)[-1]
    kids = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{comparison.info.run_id}'")
    assert sorted(k.data.tags["method"] for k in kids) == sorted(METHODS * 2)
    report = json.load(open(client.download_artifacts(comparison.info.run_id, "comparison/comparison.json")))
    for method in METHODS:
        tests = sorted(k.data.metrics["test_accuracy"] for k in kids if k.data.tags["method"] == method)
        assert sorted(report["methods"][method]["repeats"]) == tests
        assert report["methods"][method]["repeat_sd"] == pytest.approx(np.std(tests, ddof=1))


def test_compare_skips_unfinished_sweeps_and_comparisons(store):
    client, uri, _, _ = store
    exp, sweeps = _sweeps(client)
    running = client.create_run(exp.experiment_id, tags={"sweep": "true", "method": "fine-tune"})
    result = runner.invoke(app, ["compare", "--tracking-uri", uri, "--experiment", "pets"])
    client.set_terminated(running.info.run_id, "KILLED")
    assert result.exit_code == 0, result.output
    latest = _comparisons(client, exp)[0]
    assert latest.data.tags["fine_tune_run"] == sweeps["fine-tune"].info.run_id
    assert latest.data.tags["feature_extraction_run"] == sweeps["feature-extraction"].info.run_id


@pytest.mark.parametrize("method", METHODS)
def test_winner_is_a_whole_image_network_that_reproduces_its_test_accuracy(store, method):
    import mlflow

    from harness.data._folders import image_dataset, scan

    client, uri, data, _ = store
    _, sweeps = _sweeps(client)
    best = client.get_run(sweeps[method].data.tags["best_run_id"])
    mlflow.set_tracking_uri(uri)
    model = mlflow.keras.load_model(best.data.tags["model_uri"])
    info = mlflow.models.get_model_info(best.data.tags["model_uri"])
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 32, 32, 3]
    test = scan(data).splits["test"]
    probs = model.predict(image_dataset(data, test, 32, 8, ("cats", "dogs")), verbose=0)
    rows = _predictions(client, best.info.run_id)
    logged = np.array([[float(r["p(cats)"]), float(r["p(dogs)"])] for r in rows])
    assert np.abs(probs - logged).max() <= 1e-5
    assert [r["true_class"] for r in rows] == [("cats", "dogs")[y] for y in test.labels]
    accuracy = np.mean((probs[:, 1] > 0.5) == test.labels.astype(bool))
    assert accuracy == pytest.approx(best.data.metrics["test_accuracy"])
    assert sweeps[method].data.tags["best_model_uri"] == best.data.tags["model_uri"]


def test_predict_prints_probability_and_class_per_photo(store):
    client, uri, data, _ = store
    _, sweeps = _sweeps(client)
    fe = sweeps["feature-extraction"]
    rows = _predictions(client, fe.data.tags["best_run_id"])[:3] + _predictions(client, fe.data.tags["best_run_id"])[-3:]
    photos = [str(data / r["path"]) for r in rows]
    result = runner.invoke(app, ["predict", *photos, "--run", fe.info.run_id, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    printed = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [p[0] for p in printed] == photos
    for (_, label, prob), row in zip(printed, rows):
        assert label == row["predicted_class"]
        assert float(prob) == pytest.approx(float(row[f"p({label})"]), abs=1e-3)  # printed with 3 decimals


def test_predict_and_compare_fail_with_one_line(store, tmp_path):
    _, uri, _, _ = store
    missing = runner.invoke(app, ["predict", str(tmp_path / "nope.jpg"), "--tracking-uri", uri])
    assert missing.exit_code == 2 and "photo not found" in missing.output and "Traceback" not in missing.output
    empty = f"sqlite:///{tmp_path / 'empty' / 'mlflow.db'}"
    result = runner.invoke(app, ["compare", "--tracking-uri", empty])
    assert result.exit_code == 2 and "no finished sweep" in result.output
    result = runner.invoke(app, ["compare", "--tracking-uri", uri, "--experiment", "nope"])
    assert result.exit_code == 2 and "experiment 'nope' not found" in result.output
