"""Trials that raise become FAILED child runs with their traceback; the sweep goes on, or stops clearly."""

from __future__ import annotations

from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

runner = CliRunner()


def _traceback(client, run_id: str) -> str:
    return open(client.download_artifacts(run_id, "traceback.txt")).read()


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tiny_data, store_uri, client, monkeypatch):
    from harness.tuning._tuner import TrackedTuner

    real = TrackedTuner.run_trial

    def run_trial(self, trial, *args, **kwargs):  # a bug that only one combination hits
        if trial.trial_id == "1":
            raise ValueError("this combination of units and dropout is broken")
        return real(self, trial, *args, **kwargs)

    monkeypatch.setattr(TrackedTuner, "run_trial", run_trial)
    result = runner.invoke(app, tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "1"))
    assert result.exit_code == 0, result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "FINISHED"
    status = {c.data.tags["trial_id"]: c for c in children}
    assert {k: c.info.status for k, c in status.items()} == {"0": "FINISHED", "1": "FAILED", "2": "FINISHED"}
    text = _traceback(client, status["1"].info.run_id)
    assert "Traceback" in text and "ValueError: this combination of units and dropout is broken" in text
    assert parent.data.tags["best_run_id"] != status["1"].info.run_id


def test_non_finite_loss_fails_each_trial_and_stops_the_sweep(tiny_data, store_uri, client, tmp_path):
    config = tmp_path / "explode.toml"  # a learning rate no network survives: loss turns NaN at once
    config.write_text("max_consecutive_failed_trials = 2\n"
                      "[space.learning_rate]\nmin = 1e30\nmax = 1e30\ndefault = 1e30\n")
    args = ["sweep", "feature-extraction", "--config", str(config), "--data", str(tiny_data),
            "--tracking-uri", store_uri, "--backbone", "vgg16", "--weights", "none", "--image-size", "32",
            "--epochs", "5", "--max-trials", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    assert "sweep stopped: 2 trials in a row failed (max_consecutive_failed_trials = 2)" in result.output
    assert "NaN or Inf loss" in result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.info.status == "FAILED"
    assert sorted(c.info.status for c in children) == ["FAILED", "FAILED"]
    for child in children:
        assert "NaN or Inf loss encountered" in _traceback(client, child.info.run_id)
        # TerminateOnNaN stops the trial at the first non-finite training loss (the first batch
        # after the first update) instead of training on for 5 epochs
        assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) <= 1
