"""The classifier on top of the backbone, and the one rule for its output: two classes are the
tutorial's one sigmoid unit on float 0/1 labels, three or more a softmax on class indices."""

from __future__ import annotations

import keras
import numpy as np


def label_dtype(n_classes: int) -> str:
    return "float32" if n_classes == 2 else "int32"


def make_head(input_shape, units: int, dropout: float, n_classes: int, pooling: str = "flatten") -> keras.Model:
    """The tutorial's classifier: Flatten (or global average pooling), Dense(units, relu), Dropout,
    then one sigmoid unit for two classes (exactly the tutorial's) or a softmax over three or more."""
    inputs = keras.Input(input_shape, name="features")
    pool = keras.layers.GlobalAveragePooling2D() if pooling == "avg" else keras.layers.Flatten()
    x = pool(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    if n_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="head")


def loss_for(n_classes: int) -> keras.losses.Loss:
    """Binary cross-entropy on 0/1 labels for the sigmoid head; sparse categorical on class indices."""
    if n_classes == 2:
        return keras.losses.BinaryCrossentropy()
    return keras.losses.SparseCategoricalCrossentropy()


def mean_loss(n_classes: int, labels: np.ndarray, outputs: np.ndarray) -> float:
    """The training loss of `outputs` against `labels`, shapes reconciled as fit() does."""
    return float(loss_for(n_classes)(labels, outputs))


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(n, classes) probabilities from a head's output: [1 - p, p] for the sigmoid unit."""
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim == 1 or outputs.shape[1] == 1:
        p = outputs.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return outputs
