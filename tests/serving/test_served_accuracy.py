"""Validate what you serve: the logged winner, loaded by plain MLflow, scores the validation and
test splits as the sweep logged them, for each method, each pass precision, with and without augmented views."""

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app

runner = CliRunner()
SIZE = 32
CASES = [(method, precision, augment) for method in ("feature-extraction", "fine-tune")
         for precision in ("float32", "bfloat16") for augment in (False, True)]


def _split(data, split):
    import keras

    test = keras.utils.image_dataset_from_directory(data / split, image_size=(SIZE, SIZE), shuffle=False,
                                                    batch_size=64)
    x, y = zip(*[(a.numpy(), b.numpy()) for a, b in test])
    return np.concatenate(x), np.concatenate(y)


@pytest.mark.parametrize("method, precision, augment", CASES,
                         ids=[f"{m}-{p}-{'augment' if a else 'plain'}" for m, p, a in CASES])
def test_the_served_winner_scores_the_test_split_as_the_sweep_logged(tiny_data, store_uri, client, method,
                                                                      precision, augment):
    import mlflow

    extra = ["--max-trials", "1", "--epochs", "1", "--precision", precision, "--experiment", "served"]
    extra += ["--augment", "--augment-views", "2"] if augment else []
    result = runner.invoke(app, tiny_sweep_args(method, tiny_data, store_uri, *extra))
    assert result.exit_code == 0, result.output
    exp = client.get_experiment_by_name("served")
    (parent,) = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    assert parent.data.params["precision"] == precision
    best = client.get_run(parent.data.tags["best_run_id"])
    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(parent.data.tags["best_model_uri"])
    # the split the trials were selected on, and the one reported: within one image of what was logged
    for split, metric in (("validation", "best_val_accuracy"), ("test", "test_accuracy")):
        x, y = _split(tiny_data, split)
        served = float(np.mean(np.asarray(model.predict(x)).argmax(axis=1) == y))
        logged = best.data.metrics[metric]
        assert abs(served - logged) * len(y) <= 1.0 + 1e-9, (split, served, logged)
