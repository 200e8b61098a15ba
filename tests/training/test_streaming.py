"""Cached features held in memory or streamed from the cache files batch by batch: the same
batches in the same order, so the same losses; which one ran is a param."""

import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app

CASES = [("feature-extraction", ()), ("fine-tune", ()), ("feature-extraction", ("--augment", "--augment-views", "2"))]


def _sweep(monkeypatch, tiny_data, store_uri, client, method, extra, budget, experiment):
    if budget is None:
        monkeypatch.delenv("HARNESS_MEMORY_BUDGET", raising=False)
    else:
        monkeypatch.setenv("HARNESS_MEMORY_BUDGET", budget)
    args = tiny_sweep_args(method, tiny_data, store_uri, "--max-trials", "1", "--epochs", "2",
                           "--experiment", experiment, *extra)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    exp = client.get_experiment_by_name(experiment)
    (trial,) = client.search_runs([exp.experiment_id], "tags.trial_id = '0'")
    curves = {name: [m.value for m in client.get_metric_history(trial.info.run_id, name)]
              for name in ("loss", "val_loss", "val_accuracy")}
    return trial.data.params["feature_reads"], curves, trial.data.metrics["test_accuracy"]


@pytest.mark.parametrize("method, extra", CASES, ids=["fe", "ft", "fe-views"])
def test_streamed_and_in_memory_features_train_the_same(monkeypatch, tiny_data, store_uri, client, method, extra):
    memory = _sweep(monkeypatch, tiny_data, store_uri, client, method, extra, None, "memory")
    streamed = _sweep(monkeypatch, tiny_data, store_uri, client, method, extra, "0", "stream")
    assert (memory[0], streamed[0]) == ("memory", "stream")
    assert len(memory[1]["loss"]) == (4 if method == "fine-tune" else 2)
    for name, values in memory[1].items():
        assert streamed[1][name] == pytest.approx(values, abs=1e-6), name
    assert streamed[2] == memory[2]


def test_a_memory_budget_that_is_not_a_number_is_one_line(monkeypatch, tiny_data, store_uri):
    monkeypatch.setenv("HARNESS_MEMORY_BUDGET", "lots")
    result = CliRunner().invoke(app, tiny_sweep_args("feature-extraction", tiny_data, store_uri))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "HARNESS_MEMORY_BUDGET='lots' is not a number of GB" in result.output
