"""A trial's trained part on disk (best-epoch weights), kept until the sweep knows its winner or a
hyperband round continues the trial."""

from __future__ import annotations

import os

import keras

WEIGHTS_FILE = "trained.weights.h5"


def save_trained(trial_dir: str, model: keras.Model) -> None:
    """Keep a trial's trained part (best-epoch weights) until the sweep knows its winner (or a
    hyperband round continues the trial). Without the optimizer's state, which Keras' save_weights
    would add (twice the weights again for Adam) and neither use reads."""
    from keras.src.saving import saving_lib

    optimizers = [m.optimizer for m in model._flatten_layers() if getattr(m, "optimizer", None)]  # per phase
    saving_lib.save_weights_only(model, os.path.join(trial_dir, WEIGHTS_FILE), objects_to_skip=optimizers)
