"""The sweep's winner as one network on images: kept per trial, assembled, logged and registered at the end."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras
import numpy as np

from harness.training._methods import trained_part
from harness.training._saved import WEIGHTS_FILE
from harness.tracking import models, runs

def uncompiled(model: keras.Model) -> keras.Model:
    """The same network and weights without optimizer or compile state: a saved compiled model
    carries its optimizer's class (ours is harness.training._optimizers.FusedAdam), which nothing outside
    harness can load. (keras.models.clone_model would compile the copy like the original.)"""
    copy = type(model).from_config(model.get_config())  # a model's config leaves its compile state out
    copy.set_weights(model.get_weights())
    return copy


def inference_network(trained: keras.Model, frozen: keras.Model, image_size: int, n_classes: int) -> keras.Model:
    """Images (RGB pixels 0..255, float32) -> one probability per class, standard Keras layers.

    `frozen` holds the preprocessing and the backbone below the trained part, `trained` is the
    trial's trained part (copied uncompiled). The two-class head's one sigmoid unit p becomes
    [1 - p, p] through a fixed Dense(2), so every winner outputs one column per class.
    """
    frozen.trainable = False
    images = keras.Input((image_size, image_size, 3), name="images")
    outputs = uncompiled(trained)(frozen(images, training=False))
    if n_classes == 2:
        outputs = keras.layers.Dense(
            2, kernel_initializer=keras.initializers.Constant([[-1.0, 1.0]]),
            bias_initializer=keras.initializers.Constant([1.0, 0.0]), trainable=False,
            name="class_probabilities")(outputs)
    return keras.Model(images, outputs, name="classifier")


def assemble(tuner, trial_id: str, frozen: keras.Model, image_size: int) -> keras.Model:
    """Rebuild the winning trial's network from its hyperparameters and saved weights, and put the
    frozen part (the pass the trials were trained and selected on) in front of its trained part."""
    hypermodel = tuner.hypermodel
    built = hypermodel.build(tuner.oracle.get_trial(trial_id).hyperparameters)
    with warnings.catch_warnings():
        # the file also holds the trial's optimizer state, which inference does not need
        warnings.simplefilter("ignore")
        built.load_weights(os.path.join(tuner.get_trial_dir(trial_id), WEIGHTS_FILE))
    return inference_network(trained_part(built, hypermodel.trained_part), frozen, image_size,
                             hypermodel.n_classes)


def discard_saved(tuner) -> None:
    """The winner now lives in MLflow; the per-trial weight files only take disk space."""
    for path in Path(str(tuner.project_dir)).glob(f"trial_*/{WEIGHTS_FILE}"):
        path.unlink(missing_ok=True)


def model_metadata(cfg, image_size: int, class_names: tuple[str, ...], backbone: str | None = None) -> dict:
    """What a user of the logged model needs besides the network: it travels in its MLmodel file."""
    return {"class_names": list(class_names), "image_size": image_size,
            "input": f"RGB pixels 0..255 as float32, shape (N, {image_size}, {image_size}, 3); "
                     "the preprocessing is part of the network",
            "output": "one probability per class, column i is class_names[i]",
            "method": cfg.method, "backbone": backbone or cfg.backbones[0], "weights": cfg.weights,
            "preprocessing": cfg.preprocessing, "producer": "harness"}


def log_winner(tracker, parent_id: str, best, tuner, frozen, cfg, image_size: int,
               class_names: tuple[str, ...], backbone: str | None = None) -> str:
    """Log the winner (its trial's frozen network: backbone and image size, searched or not) as a
    Keras model with a signature and metadata on its run; tag both runs with its URI."""
    model = assemble(tuner, best.trial_id, frozen, image_size)
    # the signature from example arrays of the right shapes and dtypes: running the network here
    # would only trace it once more
    example = np.zeros((1, image_size, image_size, 3), dtype="float32")
    output = np.zeros((1, len(class_names)), dtype="float32")
    uri = models.log_keras_model(tracker, best.run_id, model, example, output,
                                 model_metadata(cfg, image_size, class_names, backbone))
    runs.set_tags(tracker, best.run_id, {"model_uri": uri})
    runs.set_tags(tracker, parent_id, {"best_model_uri": uri})
    discard_saved(tuner)
    return uri


def register(tracker, name: str, uri: str, parent_id: str, best, tags: dict[str, str]) -> str:
    """The winner as a new version of registered model `name`; returns its models:/ URI."""
    version = models.register(tracker, uri, name, {
        "method": tags["method"], "backbone": str(best.hyperparameters.get("backbone", tags["backbone"])),
        "data_fingerprint": tags["data_fingerprint"],
        "classes": tags["classes"], "val_accuracy": f"{best.val_accuracy:.6g}",
        "test_accuracy": f"{best.test_accuracy:.6g}", "parent_run_id": parent_id})
    registered = f"models:/{name}/{version}"
    runs.set_tags(tracker, parent_id, {"registered_model": registered})
    return registered
