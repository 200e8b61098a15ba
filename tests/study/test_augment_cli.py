"""Augmented sweeps on cached views, searching image size and pooling, end to end through the CLI;
what landed in MLflow read back through its own client, the winner loaded as a user loads it."""

import csv
import io

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

runner = CliRunner()
SWEEP_FILE = """
augment = true
augment_views = 2
image_size = [32, 40]
pooling = ["flatten", "avg"]
[augmentation]
translation = 0.1
"""


def _args(method, data, store_uri, sweep_file):
    args = tiny_sweep_args(method, data, store_uri)
    i = args.index("--image-size")
    del args[i:i + 2]  # the sizes come from the sweep file
    return args + ["--config", str(sweep_file), "--max-trials", "4", "--epochs", "1"]


def _predictions(client, run_id):
    path = client.download_artifacts(run_id, "predictions/test_predictions.csv")
    return list(csv.DictReader(io.StringIO(open(path).read())))


@pytest.mark.parametrize("method, epochs_logged", [
    pytest.param("feature-extraction", 1, marks=pytest.mark.slow),
    pytest.param("fine-tune", 2, marks=pytest.mark.slow)])  # two sizes x two poolings: CI's slow step
def test_augmented_sweep_searches_image_size_and_pooling(tiny_data, store_uri, client, tmp_path, method,
                                                          epochs_logged):
    import mlflow

    from harness.training import _feature_cache as features
    from harness.data._folders import image_dataset, scan

    sweep_file = tmp_path / "augment.toml"
    sweep_file.write_text(f'method = "{method}"\n{SWEEP_FILE}')
    result = runner.invoke(app, _args(method, tiny_data, store_uri, sweep_file))
    assert result.exit_code == 0, result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["feature_cache"] == "miss (2 augmented views per training image)"
    params = parent.data.params
    assert (params["image_size_choices"], params["pooling_choices"], params["augment_views"]) == \
        ("32,40", "flatten,avg", "2")
    assert "translation=0.1" in params["augmentation"] and "rotation=0.1" in params["augmentation"]
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert {c.data.params["image_size"] for c in children} == {"32", "40"}  # each trial its size's features
    assert {c.data.params["pooling"] for c in children} == {"flatten", "avg"}
    for child in children:
        assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) == epochs_logged
    entries = features.list_entries()
    assert sorted(e["image_size"] for e in entries) == [32, 40]
    assert all(e["views"].startswith("views=2;") for e in entries)

    best = client.get_run(parent.data.tags["best_run_id"])
    size = int(best.data.params["image_size"])
    assert parent.data.tags["best.image_size"] == str(size)
    assert parent.data.tags["best.pooling"] == best.data.params["pooling"]
    mlflow.set_tracking_uri(store_uri)
    model = mlflow.keras.load_model(parent.data.tags["best_model_uri"])
    assert tuple(model.input_shape) == (None, size, size, 3)  # the winner is built at the chosen size
    test = scan(tiny_data).splits["test"]
    probs = model.predict(image_dataset(tiny_data, test, size, 8, ("cats", "dogs")), verbose=0)
    assert probs.shape == (len(test.files), 2)  # one probability per class, named in the model's metadata
    rows = _predictions(client, best.info.run_id)
    assert np.allclose(probs[:, 1], [float(r["p(dogs)"]) for r in rows], atol=1e-3)


def test_bad_augmentation_settings_are_one_line_before_anything_runs(tiny_data, unopened_store_uri, tmp_path):
    sweep_file = tmp_path / "bad.toml"
    sweep_file.write_text('method = "feature-extraction"\naugment = true\n[augmentation]\nrotation = 2.0\n')
    result = runner.invoke(app, _args("feature-extraction", tiny_data, unopened_store_uri, sweep_file))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == ["error: augmentation.rotation: must lie within [0, 0.5], got 2.0"]
    assert not (tmp_path / "store").exists()  # nothing was logged
