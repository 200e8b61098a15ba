"""The sweep's winner as one network on images: kept per trial, assembled and logged at the end."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras
import numpy as np

from harness.methods import on_images

WEIGHTS_FILE = "trained.weights.h5"


def save_trained(trial_dir: str, model: keras.Model) -> None:
    """Keep a trial's trained part (best-epoch weights) until the sweep knows its winner (or a
    hyperband round continues the trial). Without the optimizer's state, which Keras' save_weights
    would add (twice the weights again for Adam) and neither use reads."""
    from keras.src.saving import saving_lib

    optimizers = [m.optimizer for m in model._flatten_layers() if getattr(m, "optimizer", None)]  # per phase
    saving_lib.save_weights_only(model, os.path.join(trial_dir, WEIGHTS_FILE), objects_to_skip=optimizers)


def image_network(trained: keras.Model, frozen: keras.Model | None, image_size: int) -> keras.Model:
    """Images -> class probabilities: preprocessing + frozen backbone part in front of the trained part.

    With augmentation the trial already trained on images (`frozen` is None then); its
    augmentation layers do nothing at inference.
    """
    if frozen is None:
        return trained
    return on_images(trained, frozen, image_size, name="classifier")


def assemble(tuner, trial_id: str, frozen: keras.Model | None, image_size: int) -> keras.Model:
    """Rebuild the winning trial's trained part from its hyperparameters and saved weights."""
    trial = tuner.oracle.get_trial(trial_id)
    trained = tuner.hypermodel.build(trial.hyperparameters)
    with warnings.catch_warnings():
        # the file also holds the trial's optimizer state, which inference does not need
        warnings.simplefilter("ignore")
        trained.load_weights(os.path.join(tuner.get_trial_dir(trial_id), WEIGHTS_FILE))
    return image_network(trained, frozen, image_size)


def discard_saved(tuner) -> None:
    """The winner now lives in MLflow; the per-trial weight files only take disk space."""
    for path in Path(str(tuner.project_dir)).glob(f"trial_*/{WEIGHTS_FILE}"):
        path.unlink(missing_ok=True)


def log_winner(tracker, parent_id: str, best, tuner, frozen, image_size: int) -> str:
    """Log the winner as a Keras model with a signature on its run; tag both runs with its URI."""
    model = assemble(tuner, best.trial_id, frozen, image_size)
    example = np.zeros((1, image_size, image_size, 3), dtype="float32")
    uri = tracker.log_keras_model(best.run_id, model, example, model.predict(example, verbose=0))
    tracker.set_tags(best.run_id, {"model_uri": uri})
    tracker.set_tags(parent_id, {"best_model_uri": uri})
    discard_saved(tuner)
    return uri
