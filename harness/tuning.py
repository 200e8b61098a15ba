"""Building the tuner: keras-tuner oracles, and a Tuner whose trial hooks log to MLflow."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner as kt
import numpy as np

from harness import metrics, plots, winner
from harness.callbacks import EpochLogger, KeepBestWeights
from harness.config import SweepConfig
from harness.errors import HarnessError, StoreError
from harness.methods import class_probabilities, mean_loss
from harness.seeding import seed_everything

OBJECTIVE = kt.Objective("val_accuracy", direction="max")

# keras-tuner prints a failed trial's traceback to the terminal when DEBUG is on (its default);
# ours goes to the trial's run as traceback.txt, and the terminal gets one line per trial.
from keras_tuner.src import config as _kt_config  # noqa: E402

_kt_config.DEBUG = False


class DefaultsFirst:
    """Oracle mixin: the first candidate is the search space's defaults (the tutorial's
    configuration), so every sweep holds that reference point; then the oracle's own way."""

    def _random_values(self):
        space = self.hyperparameters
        values = {hp.name: hp.default for hp in space.space if space.is_active(hp)}
        if not self._duplicate(values):
            return values
        return super()._random_values()


class RandomOracle(DefaultsFirst, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(DefaultsFirst, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(DefaultsFirst, kt.oracles.HyperbandOracle):
    pass


def make_oracle(cfg: SweepConfig) -> kt.Oracle:
    common = {"objective": OBJECTIVE, "seed": cfg.seed,
              "max_consecutive_failed_trials": cfg.max_consecutive_failed_trials}
    if cfg.tuner == "bayesian":
        return BayesianOracle(max_trials=cfg.max_trials, **common)
    if cfg.tuner == "hyperband":
        # Hyperband sizes itself from max_epochs; max_trials caps the total.
        return HyperbandOracle(max_epochs=cfg.epochs, factor=3, max_trials=cfg.max_trials, **common)
    return RandomOracle(max_trials=cfg.max_trials, **common)


@dataclass
class TrialRecord:
    """What one trial produced, as the sweep summary needs it."""

    trial_id: str
    run_id: str
    name: str
    hyperparameters: dict[str, Any]
    status: str = "RUNNING"
    val_accuracy: float = math.nan
    test_accuracy: float = math.nan
    best_epoch: int = -1

    @classmethod
    def from_run(cls, trial_id: str, run, values: dict[str, Any]) -> "TrialRecord":
        """A trial as its finished (or failed) child run in the store tells it."""
        m = run.metrics
        return cls(trial_id, run.run_id, run.name, values, run.status, m.get("best_val_accuracy", math.nan),
                   m.get("test_accuracy", math.nan), int(m.get("best_epoch", -1)))


def trial_name(method: str, trial_id: str, values: dict[str, Any]) -> str:
    parts = [f"{method} #{int(trial_id) + 1}"]
    if "units" in values:
        parts.append(f"units={values['units']}")
    if "dropout" in values:
        parts.append(f"dropout={values['dropout']:.2f}")
    return " ".join(parts)


def public_values(values: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters a person chose between; keras-tuner's own `tuner/...` bookkeeping aside."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def last_line(message: str | None) -> str:
    """The exception line of a traceback."""
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def log_confusion_matrix(tracker, run_id: str, title: str) -> None:
    """The best trial's confusion matrix on the test split, drawn from its logged predictions."""
    predictions = metrics.parse_predictions(tracker.read_text(run_id, metrics.PREDICTIONS_ARTIFACT))
    fig = plots.confusion(predictions.scores().confusion, predictions.class_names, title)
    tracker.log_figure(run_id, fig, metrics.CONFUSION_ARTIFACT)
    plots.close(fig)


class StoreFailed(StoreError, kt.errors.FatalError):
    """A store failure inside a trial: keras-tuner re-raises FatalErrors instead of calling the
    trial failed and going on, so the sweep stops and the trial runs again on resume."""


def _store_failures_stop_the_sweep(run_trial):
    @functools.wraps(run_trial)
    def wrapper(*args, **kwargs):
        try:
            return run_trial(*args, **kwargs)
        except StoreError as exc:  # the store failed, not the trial
            raise StoreFailed(str(exc), exc.kind) from None

    return wrapper


class TrackedTuner(kt.engine.base_tuner.BaseTuner):
    """keras-tuner drives the trials; the hooks open, fill and close one MLflow child run each."""

    def __init__(self, oracle, hypermodel, *, cfg: SweepConfig, tracker, experiment_id: str,
                 parent_id: str, fixed_params: dict[str, Any], reporter, **kwargs):
        super().__init__(oracle, hypermodel, **kwargs)
        self.cfg, self.tracker, self.experiment_id = cfg, tracker, experiment_id
        self.parent_id, self.fixed_params, self.reporter = parent_id, fixed_params, reporter
        self.records: dict[str, TrialRecord] = {}

    # -- hooks ---------------------------------------------------------------
    def on_trial_begin(self, trial):
        values = public_values(trial.hyperparameters.values)
        name = trial_name(self.cfg.method, trial.trial_id, values)
        run_id = self.tracker.start_run(
            self.experiment_id, name, parent_id=self.parent_id,
            tags={"method": self.cfg.method, "trial_id": trial.trial_id, "backbone": self.cfg.backbone})
        self.tracker.log_params(run_id, {**values, **self.fixed_params})
        self.records[trial.trial_id] = TrialRecord(trial.trial_id, run_id, name, values)
        self.reporter.trial_started(len(self.records), self.cfg.max_trials, name)

    @_store_failures_stop_the_sweep
    def run_trial(self, trial, data, **kwargs):  # kwargs: keras-tuner's `verbose`, unused
        record = self.records[trial.trial_id]
        hp = trial.hyperparameters
        data = data.for_trial(hp)  # the features of the trial's image size
        seed_everything(self.cfg.seed + int(trial.trial_id))
        epochs = int(hp.values.get("tuner/epochs", self.cfg.epochs))
        model = self.hypermodel.build(hp)
        phases = 2 if self.cfg.method == "fine-tune" else 1
        logger = EpochLogger(lambda m, step: self.tracker.log_metrics(record.run_id, m, step),
                             self.reporter, epochs * phases)
        best = KeepBestWeights(model)
        # raise_error: a non-finite loss fails the trial at that batch, in either phase.
        callbacks = [keras.callbacks.TerminateOnNaN(raise_error=True), logger, best]
        if phases == 2:
            self.tracker.log_params(record.run_id, {"phase2_first_step": epochs})
        self.hypermodel.fit(hp, model, data, callbacks=callbacks, epochs=epochs)
        if best.best_weights is None:
            raise RuntimeError("no epoch produced a finite val_accuracy")
        best.restore()
        self.save_model(trial.trial_id, model)
        self._evaluate(record, model, data, best, logger.history, epochs if phases == 2 else None)
        return {k: v for k, v in best.best_logs.items() if k in ("val_accuracy", "val_loss", "loss", "accuracy")}

    def on_trial_end(self, trial):
        record = self.records[trial.trial_id]
        ok = trial.status == kt.engine.trial.TrialStatus.COMPLETED
        if not ok and trial.message:
            self.tracker.log_text(record.run_id, trial.message, "traceback.txt")
        record.status = "FINISHED" if ok else "FAILED"
        self.tracker.end_run(record.run_id, record.status)
        self.reporter.trial_ended(record)
        try:
            super().on_trial_end(trial)
        except RuntimeError as exc:  # the oracle's max_consecutive_failed_trials stop
            if "consecutive failures" not in str(exc):
                raise
            n = self.oracle.max_consecutive_failed_trials
            raise HarnessError(
                f"sweep stopped: {n} trials in a row failed (max_consecutive_failed_trials = {n}); "
                f"last error: {last_line(trial.message)}; each failed trial's run has traceback.txt"
            ) from None

    def restore_records(self, children) -> None:
        """A resumed sweep's ended trials, from its child runs (the interrupted ones run again)."""
        for run in reversed(children):  # oldest first: a trial's latest attempt wins
            trial = self.oracle.trials.get(run.tags.get("trial_id", ""))
            if trial is None or run.status not in ("FINISHED", "FAILED"):
                continue
            self.records[trial.trial_id] = TrialRecord.from_run(
                trial.trial_id, run, public_values(trial.hyperparameters.values))

    # -- pieces ----------------------------------------------------------------
    def _evaluate(self, record, model, data, best, history, phase2_start) -> None:
        """Score the restored best-epoch weights on validation and test; log the scores, the test
        predictions and the curves. Test scores are reported, never used to choose."""
        _, val = self._score(model, data, "validation")
        outputs, test = self._score(model, data, "test")
        record.val_accuracy, record.test_accuracy, record.best_epoch = (
            best.best_logs["val_accuracy"], test.accuracy, best.best_epoch)
        self.tracker.log_metrics(record.run_id, {
            "best_epoch": best.best_epoch, "best_val_accuracy": record.val_accuracy,
            "best_val_loss": best.best_logs["val_loss"], "test_accuracy": test.accuracy,
            "test_loss": mean_loss(data.n_classes, data.labels["test"], outputs),
            **val.as_metrics("val"), **test.as_metrics("test")})
        self.tracker.log_text(record.run_id, metrics.predictions_csv(
            data.files["test"], data.labels["test"], class_probabilities(outputs), data.class_names),
            metrics.PREDICTIONS_ARTIFACT)
        fig = plots.curves(history, record.name, phase2_start)
        self.tracker.log_figure(record.run_id, fig, "plots/curves.png")
        plots.close(fig)

    def _score(self, model, data, split: str):
        """(raw outputs, scores) of `model` on one split."""
        outputs = model.predict(data.dataset(self.hypermodel.input_layer, split), verbose=0)
        return outputs, metrics.scores(data.labels[split], class_probabilities(outputs), data.class_names)

    def save_model(self, trial_id, model, step=0):
        # Kept on disk until the sweep's winner is known; see harness.winner.
        winner.save_trained(self.get_trial_dir(trial_id), model)

    def load_model(self, trial):
        raise NotImplementedError("models are read back from MLflow, not from the tuner folder")
