"""The Python API alone, as a notebook uses it (no CLI): both methods swept, compared and used to
predict, everything checked through MLflow's own client."""

from __future__ import annotations

import pytest

import harness

SETTINGS = dict(backbone="vgg16", weights="none", image_size=32, epochs=2, max_trials=2, seed=3)


def _children(client, run):
    return client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")


def test_both_methods_compare_and_predict_through_the_python_api(tiny_data, store_uri, client):
    results = {m: harness.sweep(m, data=str(tiny_data), tracking_uri=store_uri, **SETTINGS)
               for m in ("feature-extraction", "fine-tune")}
    for method, result in results.items():
        parent = client.get_run(result.parent_run_id)
        assert parent.info.status == "FINISHED" and parent.data.tags["method"] == method
        assert parent.data.params["image_size"] == "32" and parent.data.params["max_trials"] == "2"
        children = _children(client, parent)
        assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
        best = client.get_run(parent.data.tags["best_run_id"])
        assert best.info.run_id in {c.info.run_id for c in children}
        # selected by validation: no other trial has a higher best_val_accuracy
        assert best.data.metrics["best_val_accuracy"] == max(c.data.metrics["best_val_accuracy"] for c in children)
        assert parent.data.metrics["best_test_accuracy"] == best.data.metrics["test_accuracy"]
        assert result.model_uri == parent.data.tags["best_model_uri"] == best.data.tags["model_uri"]

    comparison = harness.compare(experiment=tiny_data.name, tracking_uri=store_uri)
    logged = client.get_run(comparison.run_id)
    assert logged.info.status == "FINISHED" and logged.data.tags["kind"] == "comparison"
    fe_best = client.get_run(client.get_run(results["feature-extraction"].parent_run_id).data.tags["best_run_id"])
    assert logged.data.metrics["fe_test_accuracy"] == pytest.approx(fe_best.data.metrics["test_accuracy"])

    predicted = harness.predict([tiny_data / "test"], run=results["fine-tune"].parent_run_id, tracking_uri=store_uri)
    assert len(predicted.rows) == 12 and {p.label for p in predicted.rows} <= {"cats", "dogs"}


def test_library_errors_are_exceptions_not_exits(tiny_data, unopened_store_uri, tmp_path):
    with pytest.raises(harness.HarnessError, match="image_size: must be >= 32, got 16"):
        harness.sweep("feature-extraction", data=str(tiny_data), tracking_uri=unopened_store_uri, image_size=16)
    with pytest.raises(harness.HarnessError, match="resume: 'later' is not one of"):
        harness.sweep("fine-tune", data=str(tiny_data), tracking_uri=unopened_store_uri, resume="later")
    assert not (tmp_path / "store").exists()  # nothing was logged
