"""The bayesian and hyperband tuners end to end through the CLI for each method (random search's are
tests/cli/test_sweep_cli.py), read back through MlflowClient; hyperband's rounds, epoch budget and
continued trials; resuming a hyperband sweep."""

from __future__ import annotations

import os
import signal

import pytest
from typer.testing import CliRunner

from conftest import interrupt_trial, runs_of, tiny_sweep_args
from harness.cli import app

# slow marker: runs in CI's `pytest -m slow` step (.ci/run), keeping the default suite under 5 minutes
pytestmark = pytest.mark.slow  # six sweeps, one per tuner and method

runner = CliRunner()
TUNERS = ("bayesian", "hyperband")
METHODS = ("feature-extraction", "fine-tune")
# Hyperband's rounds follow from the epochs: 3 epochs of feature extraction give a bracket of
# three 1-epoch trials whose best continues to epoch 3, and a bracket of two 3-epoch trials.
# Fine-tuning's schedule is 2 x epochs: with 1 epoch per phase, one bracket of two 2-epoch trials.
EPOCHS = {("hyperband", "feature-extraction"): "3", ("hyperband", "fine-tune"): "1"}
TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round")
OUTPUTS: dict = {}  # the swept fixture's CLI output per (tuner, method), and its data folder


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep per tuner and method into one store (module-scoped: they are the slow part)."""
    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("tuners")
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(root / "cache")
    data = write_synthetic(root / "photos", per_class=6, size=40)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    outputs = {}  # what the CLI printed, per (tuner, method)
    try:
        for tuner in TUNERS:
            for method in METHODS:
                epochs = EPOCHS.get((tuner, method), "2")
                result = runner.invoke(app, tiny_sweep_args(method, data, uri, "--tuner", tuner, "--epochs", epochs,
                                                            "--experiment", f"{tuner}-{method}"))
                assert result.exit_code == 0, result.output
                outputs[tuner, method] = result.output
    finally:
        os.environ.pop("HARNESS_CACHE_DIR") if old is None else os.environ.__setitem__("HARNESS_CACHE_DIR", old)
    OUTPUTS.update(outputs, data=data)
    return MlflowClient(tracking_uri=uri)


def _steps(client, run, key="val_accuracy") -> list[int]:
    return [m.step for m in client.get_metric_history(run.info.run_id, key)]


@pytest.mark.parametrize("tuner", TUNERS)
@pytest.mark.parametrize("method", METHODS)
def test_every_trial_is_a_finished_child_and_the_best_is_chosen_by_validation(swept, tuner, method):
    (parent,), children = runs_of(swept, f"{tuner}-{method}")
    assert parent.info.status == "FINISHED" and parent.data.tags["tuner"] == tuner
    planned = int(parent.data.params.get("planned_trials", 3))  # hyperband's plan; else --max-trials 3
    assert sorted(int(c.data.tags["trial_id"]) for c in children) == list(range(planned))
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    best_val = max(c.data.metrics["best_val_accuracy"] for c in children)
    chosen = next(c for c in children if c.info.run_id == parent.data.tags["best_run_id"])
    assert chosen.data.metrics["best_val_accuracy"] == best_val == parent.data.metrics["best_val_accuracy"]
    assert parent.data.metrics["best_test_accuracy"] == chosen.data.metrics["test_accuracy"]
    first = next(c for c in children if int(c.data.tags["trial_id"]) == 0)  # the tutorial's defaults
    assert (first.data.params["units"], float(first.data.params["dropout"])) == ("128", 0.5)
    for child in children:
        assert "plots/curves.png" in {a.path for a in swept.list_artifacts(child.info.run_id, "plots")}
        assert 0.0 <= child.data.metrics["test_accuracy"] <= 1.0


@pytest.mark.parametrize("method, steps", [("feature-extraction", 2), ("fine-tune", 4)])
def test_bayesian_trains_every_trial_for_the_whole_schedule(swept, method, steps):
    _, children = runs_of(swept, f"bayesian-{method}")
    for child in children:
        assert _steps(swept, child) == list(range(steps))
        assert not any(k in child.data.params for k in TUNER_KEYS)


@pytest.mark.parametrize("method", METHODS)
def test_hyperband_trials_train_their_round_of_the_schedule(swept, method):
    (parent,), children = runs_of(swept, f"hyperband-{method}")
    schedule = 3 if method == "feature-extraction" else 2  # fine-tune: 1 epoch per phase, 2 phases
    assert parent.data.params["hyperband_max_epochs"] == str(schedule)
    for child in children:
        first, end = int(child.data.params["tuner/initial_epoch"]), int(child.data.params["tuner/epochs"])
        assert 0 < end <= schedule
        for key in ("loss", "val_loss", "val_accuracy"):
            assert _steps(swept, child, key) == list(range(first, end))  # steps go on from the resumed epoch
        assert first <= int(child.data.metrics["best_epoch"]) < end
    if method == "fine-tune":
        assert {c.data.params["phase2_first_step"] for c in children} == {"1"}


def test_hyperband_continues_the_best_of_a_round_from_its_saved_trial(swept):
    _, children = runs_of(swept, "hyperband-feature-extraction")
    by_id = {c.data.tags["trial_id"]: c for c in children}
    assert len(by_id) == 6  # round 0: three 1-epoch trials, round 1: one continued; bracket 0: two 3-epoch
    continued = [c for c in children if "continues_trial_id" in c.data.tags]
    assert len(continued) == 1
    (child,) = continued
    past = by_id[child.data.tags["continues_trial_id"]]
    assert child.data.tags["continues_run_id"] == past.info.run_id
    round0 = [c for c in children if c.data.params["tuner/bracket"] == "1" and c.data.params["tuner/round"] == "0"]
    assert past.data.metrics["best_val_accuracy"] == max(c.data.metrics["best_val_accuracy"] for c in round0)
    assert child.data.params["tuner/initial_epoch"] == past.data.params["tuner/epochs"] == "1"
    for name in ("units", "dropout", "learning_rate"):
        assert child.data.params[name] == past.data.params[name]
    assert "from #" in child.info.run_name
    assert child.info.run_name.split(" · ")[1] in OUTPUTS["hyperband", "feature-extraction"]  # summary


def _record_loads(monkeypatch, loaded: list) -> None:
    """(trial id, weights file) of every load_weights call made while a trial runs."""
    import keras

    from harness.tuning._tuner import TrackedTuner

    real_run, real_load = TrackedTuner.run_trial, keras.Model.load_weights
    current = []

    def run_trial(self, trial, *args, **kwargs):
        current[:] = [trial.trial_id]
        try:
            return real_run(self, trial, *args, **kwargs)
        finally:
            current.clear()

    def load_weights(self, path, *args, **kwargs):
        if current:
            loaded.append((current[0], str(path)))
        return real_load(self, path, *args, **kwargs)

    monkeypatch.setattr(TrackedTuner, "run_trial", run_trial)
    monkeypatch.setattr(keras.Model, "load_weights", load_weights)


def test_an_interrupted_hyperband_sweep_resumes_its_continued_trial_from_saved_weights(
        tiny_data, store_uri, client, monkeypatch):
    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--tuner", "hyperband", "--epochs", "3")
    interrupt_trial(monkeypatch, "3", signal.SIGTERM)  # trial 3 continues round 0's best
    result = runner.invoke(app, args)
    assert result.exit_code == 143, result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "KILLED"
    assert sorted((c.data.tags["trial_id"], c.info.status) for c in children) == [
        ("0", "FINISHED"), ("1", "FINISHED"), ("2", "FINISHED"), ("3", "KILLED")]
    monkeypatch.undo()

    loaded: list[tuple[str, str]] = []
    _record_loads(monkeypatch, loaded)
    resumed = runner.invoke(app, args + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    (parent_after,), children_after = runs_of(client, "tiny")
    assert parent_after.info.run_id == parent.info.run_id and parent_after.info.status == "FINISHED"
    finished = {c.data.tags["trial_id"]: c for c in children_after if c.info.status == "FINISHED"}
    assert sorted(finished) == [str(i) for i in range(6)] and len(children_after) == 7
    again = finished["3"]
    past = again.data.tags["continues_trial_id"]
    assert again.data.tags["continues_run_id"] == finished[past].info.run_id
    assert _steps(client, again) == [1, 2]
    # the re-run continued trial started from the weights its predecessor saved before the interruption
    assert [(t, os.path.basename(os.path.dirname(p))) for t, p in loaded] == [("3", f"trial_{past}")]


def test_hyperband_refuses_distributed_sweeps_before_anything_runs(tiny_data, unopened_store_uri, tmp_path):
    result = runner.invoke(app, tiny_sweep_args("fine-tune", tiny_data, unopened_store_uri, "--tuner", "hyperband",
                                                "--workers", "2"))
    assert result.exit_code == 2, result.output
    assert "hyperband runs in one process" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("method", METHODS)
def test_the_hyperband_winner_is_an_image_network_that_reproduces_its_logged_predictions(swept, method):
    import mlflow
    import numpy as np

    import harness.backbones._registry  # noqa: F401  registers the Preprocess layer for loading
    from harness.data._folders import image_dataset, scan

    (parent,), _ = runs_of(swept, f"hyperband-{method}")
    best = swept.get_run(parent.data.tags["best_run_id"])
    mlflow.set_tracking_uri(swept.tracking_uri)
    model = mlflow.keras.load_model(parent.data.tags["best_model_uri"])
    test = scan(OUTPUTS["data"]).splits["test"]
    probs = model.predict(image_dataset(OUTPUTS["data"], test, 32, 8, ("cats", "dogs")), verbose=0)
    logged = open(swept.download_artifacts(best.info.run_id, "predictions/test_predictions.csv")).read()
    p_dogs = [float(line.split(",")[-1]) for line in logged.strip().splitlines()[1:]]  # the last column: p(dogs)
    assert probs.shape == (len(test.files), 2) and np.allclose(probs[:, 1], p_dogs, atol=1e-3)
