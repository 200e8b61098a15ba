"""Three classes end to end through the CLI: softmax head, macro-F1, per-class recall, the
confusion matrix and per-class predictions, all read back through MLflow's own client."""

import csv
import io

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

# Slow step (two sweeps and a compare); the default suite's `harness demo` test is three classes too.
pytestmark = pytest.mark.slow
runner = CliRunner()
METHODS = ("feature-extraction", "fine-tune")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Both methods swept on a 3-class synthetic set into one store, then compared."""
    import os

    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("three")
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(root / "cache")
    data = write_synthetic(root / "shapes", per_class=4, size=32, classes=3)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    outputs = {}
    for method in METHODS:
        result = runner.invoke(app, tiny_sweep_args(method, data, uri, "--max-trials", "2", "--epochs", "1"))
        assert result.exit_code == 0, result.output
        outputs[method] = result.output
    compared = runner.invoke(app, ["compare", "--tracking-uri", uri])
    os.environ.pop("HARNESS_CACHE_DIR") if old is None else os.environ.__setitem__("HARNESS_CACHE_DIR", old)
    return MlflowClient(tracking_uri=uri), uri, data, compared


def _classes(data):
    return sorted(p.name for p in (data / "train").iterdir())


def _rows(client, run_id):
    text = open(client.download_artifacts(run_id, "predictions/test_predictions.csv")).read()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("method", METHODS)
def test_three_classes_get_a_softmax_head_and_per_class_scores(three, method):
    from sklearn.metrics import f1_score

    client, _, data, _ = three
    classes = _classes(data)
    parents, children = runs_of(client, "shapes")
    (parent,) = [p for p in parents if p.data.tags.get("method") == method and p.data.tags.get("sweep")]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["classes"] == '["' + '", "'.join(classes) + '"]'
    kids = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
    assert len(kids) == 2
    for child in kids:
        assert child.data.params["n_classes"] == "3" and child.data.params["output"] == "softmax"
        assert child.data.params["loss"] == "sparse_categorical_crossentropy"
        rows = _rows(client, child.info.run_id)
        assert list(rows[0]) == ["path", "true_class", "predicted_class", "correct", *(f"p({c})" for c in classes)]
        assert len(rows) == 3 * 4
        for row in rows:
            probs = np.array([float(row[f"p({c})"]) for c in classes])
            assert probs.sum() == pytest.approx(1.0, abs=1e-4)
            assert row["predicted_class"] == classes[int(np.argmax(probs))]
            assert row["true_class"] == row["path"].split("/")[1]  # test/<class>/<file>
        truth, pred = [r["true_class"] for r in rows], [r["predicted_class"] for r in rows]
        m = child.data.metrics
        assert m["test_accuracy"] == pytest.approx(np.mean([t == p for t, p in zip(truth, pred)]))
        assert m["test_macro_f1"] == pytest.approx(f1_score(truth, pred, labels=classes, average="macro",
                                                            zero_division=0.0))
        for c in classes:
            own = [p for t, p in zip(truth, pred) if t == c]
            assert m[f"test_recall/{c}"] == pytest.approx(np.mean([p == c for p in own]))
            assert 0.0 <= m[f"val_recall/{c}"] <= 1.0
        assert 0.0 <= m["val_macro_f1"] <= 1.0
        plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        is_best = child.info.run_id == parent.data.tags["best_run_id"]
        assert ("plots/confusion_matrix.png" in plots) == is_best


@pytest.mark.parametrize("method", METHODS)
def test_the_winner_outputs_one_probability_per_class(three, method):
    import mlflow

    client, uri, data, _ = three
    parents, _ = runs_of(client, "shapes")
    (parent,) = [p for p in parents if p.data.tags.get("method") == method and p.data.tags.get("sweep")]
    mlflow.set_tracking_uri(uri)
    model = mlflow.keras.load_model(parent.data.tags["best_model_uri"])
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    out = model.predict(x, verbose=0)
    assert out.shape == (4, 3) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_compare_shows_per_class_recall_of_both_methods(three):
    client, _, data, compared = three
    assert compared.exit_code == 0, compared.output
    text = " ".join(compared.output.split())
    for c in _classes(data):
        assert f"test recall: {c}" in text
    exp = client.get_experiment_by_name("shapes")
    (comparison,) = client.search_runs([exp.experiment_id], "tags.kind = 'comparison'")
    for c in _classes(data):
        assert 0.0 <= comparison.data.metrics[f"fe_test_recall/{c}"] <= 1.0
        assert 0.0 <= comparison.data.metrics[f"ft_test_recall/{c}"] <= 1.0
