"""Building the tuner: a keras-tuner Tuner whose trial hooks log to MLflow (oracles: harness.tuning._oracles)."""

from __future__ import annotations

import functools
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner as kt

from harness.training import _metrics as metrics
from harness.training import _plots as plots
from harness.training._saved import WEIGHTS_FILE, save_trained
from harness.training._callbacks import EpochLogger, KeepBestWeights, Validation
from harness.config import SweepConfig
from harness.errors import HarnessError, StoreError
from harness.tuning._kt_internals import is_consecutive_failures_stop, quiet_failed_trials
from harness.training._heads import class_probabilities, mean_loss
from harness.tuning._oracles import continues, epoch_range, schedule_epochs
from harness.tuning._oracles import make_oracle  # noqa: F401  sweep, worker, distributed import it from here
from harness.training._seeding import seed_everything
from harness.tracking import reading, runs

# ours goes to the trial's run as traceback.txt, and the terminal gets one line per trial
quiet_failed_trials()


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
    if "backbone" in values:  # searched
        parts.append(str(values["backbone"]))
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
    predictions = metrics.parse_predictions(reading.read_text(tracker, run_id, metrics.PREDICTIONS_ARTIFACT))
    fig = plots.confusion(predictions.scores().confusion, predictions.class_names, title)
    tracker.client.log_figure(run_id, fig, metrics.CONFUSION_ARTIFACT)
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
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-plots")

    @property
    def planned_trials(self) -> int:
        """Trials the sweep will run: max_trials, or the trials of hyperband's whole iterations."""
        return getattr(self.oracle, "max_trials", None) or self.cfg.max_trials

    # -- hooks ---------------------------------------------------------------
    def on_trial_begin(self, trial):
        values = public_values(trial.hyperparameters.values)
        name = trial_name(self.cfg.method, trial.trial_id, values) + self._round_note(trial)
        run_id = runs.start(self.tracker, 
            self.experiment_id, name, parent_id=self.parent_id,
            tags={"method": self.cfg.method, "trial_id": trial.trial_id,
                  "backbone": str(values.get("backbone", self.cfg.backbones[0])),
                  **self._continued_tags(trial)})
        tuner_values = {k: v for k, v in trial.hyperparameters.values.items() if k not in values}
        runs.log_params(self.tracker, run_id, {**values, **tuner_values, **self.fixed_params})
        self.records[trial.trial_id] = TrialRecord(trial.trial_id, run_id, name, values)
        self.reporter.trial_started(len(self.records), self.planned_trials, name)

    @_store_failures_stop_the_sweep
    def run_trial(self, trial, data, **kwargs):  # kwargs: keras-tuner's `verbose`, unused
        record = self.records[trial.trial_id]
        hp = trial.hyperparameters
        data = data.for_trial(hp)  # the features of the trial's image size
        seed_everything(self.cfg.seed + int(trial.trial_id))
        first, end = epoch_range(hp.values)
        model = self._build(hp)
        validation = Validation(data)
        logger = EpochLogger(lambda m, step: runs.log_metrics(self.tracker, record.run_id, m, step),
                             self.reporter, end or schedule_epochs(self.cfg))
        best = KeepBestWeights(model, validation)
        # raise_error: a non-finite loss fails the trial at that batch, in either phase.
        callbacks = [keras.callbacks.TerminateOnNaN(raise_error=True), logger, best]
        phase2 = self.cfg.epochs if self.cfg.method == "fine-tune" else None
        if phase2:  # and the layer the frozen part ends with, which `unfreeze` names or counts
            runs.log_params(self.tracker, record.run_id, {"phase2_first_step": phase2, "cut_layer": data.cut_layer})
        self.hypermodel.fit(hp, model, data, callbacks=callbacks, epochs=end, initial_epoch=first,
                            validation=validation)
        if best.best_weights is None:
            raise RuntimeError("no epoch produced a finite val_accuracy")
        best.restore()
        # the curves are drawn and logged off this thread while the test split is scored
        plot = self._background.submit(self._log_curves, record, logger.history, phase2, first)
        self.save_model(trial.trial_id, model)
        self._evaluate(record, model, data, best)
        plot.result()
        return {k: v for k, v in best.best_logs.items() if k in ("val_accuracy", "val_loss", "loss", "accuracy")}

    def on_trial_end(self, trial):
        record = self.records[trial.trial_id]
        ok = trial.status == kt.engine.trial.TrialStatus.COMPLETED
        if not ok and trial.message:
            self.tracker.client.log_text(record.run_id, trial.message, "traceback.txt")
        record.status = "FINISHED" if ok else "FAILED"
        self.tracker.client.set_terminated(record.run_id, record.status)
        self.reporter.trial_ended(record)
        try:
            super().on_trial_end(trial)
        except RuntimeError as exc:
            if not is_consecutive_failures_stop(exc):  # the oracle's max_consecutive_failed_trials stop
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
    def _build(self, hp) -> keras.Model:
        """The trial's network; a hyperband trial continued from an earlier one starts from that
        trial's saved best-epoch weights (its optimizer starts afresh), as keras-tuner's Hyperband does."""
        model = self.hypermodel.build(hp)
        past = continues(hp.values)
        if past is not None:
            with warnings.catch_warnings():  # the saved file holds no optimizer state to restore
                warnings.simplefilter("ignore")
                model.load_weights(os.path.join(self.get_trial_dir(past), WEIGHTS_FILE))
        return model

    def _round_note(self, trial) -> str:
        """A hyperband trial's epochs in its name, and the trial it continues."""
        first, end = epoch_range(trial.hyperparameters.values)
        if end is None:
            return ""
        past = continues(trial.hyperparameters.values)
        epochs = f"epochs {first + 1}-{end}" if end > first + 1 else f"epoch {end}"
        return f" · {epochs}" + (f" from #{int(past) + 1}" if past is not None else "")

    def _continued_tags(self, trial) -> dict[str, str]:
        past = continues(trial.hyperparameters.values)
        if past is None:
            return {}
        tags = {"continues_trial_id": past}
        if past in self.records:
            tags["continues_run_id"] = self.records[past].run_id
        return tags

    def _evaluate(self, record, model, data, best) -> None:
        """Score the restored best-epoch weights on test (validation: that epoch's own outputs);
        log the scores and the test predictions. Test scores are reported, never used to choose."""
        outputs = data.predict(model, self.hypermodel.input_layer, "test")
        val = metrics.scores(data.labels["validation"], class_probabilities(best.best_outputs), data.class_names)
        test = metrics.scores(data.labels["test"], class_probabilities(outputs), data.class_names)
        record.val_accuracy, record.test_accuracy, record.best_epoch = (
            best.best_logs["val_accuracy"], test.accuracy, best.best_epoch)
        runs.log_metrics(self.tracker, record.run_id, {
            "best_epoch": best.best_epoch, "best_val_accuracy": record.val_accuracy,
            "best_val_loss": best.best_logs["val_loss"], "test_accuracy": test.accuracy,
            "test_loss": mean_loss(data.n_classes, data.labels["test"], outputs),
            **val.as_metrics("val"), **test.as_metrics("test")})
        self.tracker.client.log_text(record.run_id, metrics.predictions_csv(
            data.files["test"], data.labels["test"], class_probabilities(outputs), data.class_names),
            metrics.PREDICTIONS_ARTIFACT)

    def _log_curves(self, record, history, phase2_start, first_epoch) -> None:
        fig = plots.curves(history, record.name, phase2_start, first_epoch)
        self.tracker.client.log_figure(record.run_id, fig, "plots/curves.png")

    def save_model(self, trial_id, model, step=0):
        # Kept on disk until the sweep's winner is known; see harness.serving (the winner).
        save_trained(self.get_trial_dir(trial_id), model)

    def load_model(self, trial):
        raise NotImplementedError("models are read back from MLflow, not from the tuner folder")
