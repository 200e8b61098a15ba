"""Both sweeps through the CLI on tiny data; assertions read MLflow through its own client."""

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

runner = CliRunner()
EPOCH_CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")


def _sweep(method, data, store_uri, *extra):
    result = runner.invoke(app, tiny_sweep_args(method, data, store_uri, *extra))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One FE and one FT sweep into one store (module-scoped: they are the slow part)."""
    import os

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("swept")
    old = {k: os.environ.get(k) for k in ("HARNESS_CACHE_DIR",)}
    os.environ["HARNESS_CACHE_DIR"] = str(root / "cache")
    data = write_synthetic(root / "photos", per_class=6, size=40)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    outputs = {m: _sweep(m, data, uri).output for m in ("feature-extraction", "fine-tune")}
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri), outputs, root


def _method_runs(client, method):
    parents, children = runs_of(client, "photos")
    parents = [p for p in parents if p.data.tags["method"] == method]
    kids = [c for c in children if c.data.tags["method"] == method]
    return parents, kids


@pytest.mark.parametrize("method, epochs_logged", [("feature-extraction", 2), ("fine-tune", 4)])
def test_each_method_has_one_parent_and_a_child_per_trial(swept, method, epochs_logged):
    client, _, _ = swept
    parents, kids = _method_runs(client, method)
    assert len(parents) == 1 and len(kids) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    for tag in ("backbone", "weights", "tuner", "seed", "data_dir", "data_fingerprint"):
        assert parent.data.tags[tag]
    assert {c.data.tags["mlflow.parentRunId"] for c in kids} == {parent.info.run_id}
    assert sorted(c.data.tags["trial_id"] for c in kids) == ["0", "1", "2"]
    for child in kids:
        assert child.info.status == "FINISHED"
        assert child.info.run_name.startswith(f"{method} #") and "units=" in child.info.run_name
        for key in EPOCH_CURVES:
            history = client.get_metric_history(child.info.run_id, key)
            assert [m.step for m in history] == list(range(epochs_logged))
        assert 0.0 <= child.data.metrics["test_accuracy"] <= 1.0
        assert math.isfinite(child.data.metrics["test_loss"])
        for param in ("units", "dropout", "learning_rate", "backbone", "image_size", "epochs"):
            assert param in child.data.params
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert "plots/curves.png" in artifacts
        preds = client.download_artifacts(child.info.run_id, "predictions/test_predictions.csv")
        lines = open(preds).read().strip().splitlines()
        assert len(lines) == 1 + 12
        correct = sum(int(line.split(",")[3]) for line in lines[1:])  # path,true,predicted,correct,...
        assert correct / 12 == pytest.approx(child.data.metrics["test_accuracy"], abs=1e-6)


def test_fine_tune_records_the_phase_boundary_and_its_learning_rate(swept):
    client, _, _ = swept
    _, kids = _method_runs(client, "fine-tune")
    for child in kids:
        assert child.data.params["phase2_first_step"] == "2"
        assert float(child.data.params["fine_tune_learning_rate"]) > 0


@pytest.mark.parametrize("method", ["feature-extraction", "fine-tune"])
def test_first_trial_is_the_tutorial_configuration(swept, method):
    client, _, _ = swept
    _, kids = _method_runs(client, method)
    first = next(c for c in kids if c.data.tags["trial_id"] == "0")
    assert first.data.params["units"] == "128"
    assert float(first.data.params["dropout"]) == 0.5
    assert float(first.data.params["learning_rate"]) == pytest.approx(1e-4)
    if method == "fine-tune":
        assert float(first.data.params["fine_tune_learning_rate"]) == pytest.approx(1e-5)


@pytest.mark.parametrize("method", ["feature-extraction", "fine-tune"])
def test_parent_best_is_chosen_by_validation_only(swept, method):
    client, _, _ = swept
    (parent,), kids = _method_runs(client, method)
    best_val = max(c.data.metrics["best_val_accuracy"] for c in kids)
    best_run = parent.data.tags["best_run_id"]
    chosen = next(c for c in kids if c.info.run_id == best_run)
    assert chosen.data.metrics["best_val_accuracy"] == best_val
    assert parent.data.metrics["best_val_accuracy"] == best_val
    assert parent.data.metrics["best_test_accuracy"] == chosen.data.metrics["test_accuracy"]
    config = client.download_artifacts(parent.info.run_id, "sweep_config.json")
    assert f'"method": "{method}"' in open(config).read()


def test_summary_names_the_best_trial(swept):
    _, outputs, _ = swept
    for method, text in outputs.items():
        assert f"{method} sweep" in text and "★" in text and "FINISHED" in text


def test_second_sweep_hits_the_feature_cache(swept):
    """The fixture swept feature extraction first (cold cache), then fine-tuning on the same files."""
    client, _, _ = swept
    (fe,), _ = _method_runs(client, "feature-extraction")
    (ft,), _ = _method_runs(client, "fine-tune")
    assert fe.data.tags["feature_cache"] == "miss" and fe.data.metrics["extraction_seconds"] > 0
    assert ft.data.tags["feature_cache"] == "hit"
    assert ft.data.metrics["extraction_seconds"] == 0.0


def test_bad_config_value_exits_with_one_line_and_logs_nothing(tiny_data, unopened_store_uri, tmp_path):
    result = runner.invoke(app, tiny_sweep_args("fine-tune", tiny_data, unopened_store_uri, "--tuner", "grid"))
    assert result.exit_code == 2
    assert "tuner: 'grid' is not one of" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "store").exists()


def test_missing_data_folder_is_one_line(tmp_path, store_uri):
    result = runner.invoke(app, tiny_sweep_args("feature-extraction", tmp_path / "nope", store_uri))
    assert result.exit_code == 2
    assert "data folder not found" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("method", ["feature-extraction", "fine-tune"])
def test_two_classes_keep_the_tutorials_single_sigmoid_unit(swept, method):
    """Two classes: one sigmoid unit and binary cross-entropy, exactly the tutorial's head."""
    import keras
    import mlflow

    client, _, _ = swept
    (parent,), kids = _method_runs(client, method)
    assert parent.data.tags["classes"] == '["cats", "dogs"]'
    for child in kids:
        assert child.data.params["n_classes"] == "2" and child.data.params["output"] == "sigmoid"
        assert child.data.params["loss"] == "binary_crossentropy"
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.keras.load_model(parent.data.tags["best_model_uri"])
    dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    outputs = [d for d in dense if d.activation.__name__ in ("sigmoid", "softmax")]
    assert [(d.units, d.activation.__name__) for d in outputs] == [(1, "sigmoid")]
    # the logged network turns that unit's p into one column per class, [1 - p, p]
    assert model.output_shape == (None, 2)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, atol=1e-6)
