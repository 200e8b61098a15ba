"""Keras callbacks a trial runs with: validation, per-epoch MLflow logging, best-epoch weights, progress."""

from __future__ import annotations

import math

import keras

CURVE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class EpochLogger(keras.callbacks.Callback):
    """Sends each epoch's curves to the trial's run; step = epoch counted on across phases."""

    def __init__(self, log_metrics, reporter=None, total_epochs: int = 0):
        super().__init__()
        self.log_metrics, self.reporter, self.total_epochs = log_metrics, reporter, total_epochs
        self.history: dict[str, list[float]] = {k: [] for k in CURVE_METRICS}

    def on_epoch_end(self, epoch, logs=None):
        values = {k: float(logs[k]) for k in CURVE_METRICS if logs and k in logs}
        for k, v in values.items():
            self.history[k].append(v)
        self.log_metrics(values, step=epoch)
        if self.reporter:
            self.reporter.epoch_ended(epoch + 1, self.total_epochs, values)


class Validation(keras.callbacks.Callback):
    """Scores the model being fit on the validation split after every epoch: val_loss and
    val_accuracy go into the epoch's logs for the callbacks after it; the outputs are kept.

    One forward pass over the split (harness.training._trial_data.TrialData.predict) instead of Keras'
    per-epoch evaluate(), which sets up an input pipeline every epoch and traces one more
    function per model: on cached features that was most of a validation pass's time.
    `layer` (which cached features the model reads) is set by the method for each phase.
    """

    def __init__(self, data):
        super().__init__()
        self.data, self.layer, self.outputs = data, None, None

    def on_epoch_end(self, epoch, logs=None):
        self.outputs = self.data.predict(self.model, self.layer, "validation")
        logs["val_loss"], logs["val_accuracy"] = self.data.loss_and_accuracy("validation", self.outputs)


class KeepBestWeights(keras.callbacks.Callback):
    """Remembers `target`'s weights at the epoch with the best val_accuracy (first on ties),
    and that epoch's validation outputs when given the `validation` that scored it.

    `target` is the whole trained network, also while a phase fits only part of it, so
    the weights restored are exactly the model whose validation score is reported.
    """

    def __init__(self, target: keras.Model, validation: Validation | None = None):
        super().__init__()
        self.target, self.validation = target, validation
        self.best_epoch, self.best_logs, self.best_weights, self.best_outputs = -1, {}, None, None

    def on_epoch_end(self, epoch, logs=None):
        score = float((logs or {}).get("val_accuracy", math.nan))
        best = float(self.best_logs.get("val_accuracy", -math.inf))
        if math.isfinite(score) and score > best:
            self.best_epoch, self.best_logs = epoch, {k: float(v) for k, v in logs.items()}
            self.best_weights = self.target.get_weights()
            self.best_outputs = self.validation.outputs if self.validation else None

    def restore(self) -> None:
        if self.best_weights is not None:
            self.target.set_weights(self.best_weights)
