"""The two transfer-learning methods as keras-tuner HyperModels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner as kt
import numpy as np

from harness.backbones import fresh_copy
from harness.config import Range, SearchSpace


@dataclass
class TrialData:
    """What trials train on: cached features (`arrays[layer][split]`) or image datasets.

    With images, `images[split]` are batched (image, label) datasets, and `frozen`
    is the network that turns images into the inputs of the trained part.
    """

    labels: dict[str, np.ndarray]
    files: dict[str, list[str]]
    batch_size: int
    arrays: dict[str, dict[str, np.ndarray]] | None = None
    images: dict[str, Any] | None = None

    @property
    def uses_images(self) -> bool:
        return self.images is not None

    def fit_args(self, layer: str, split: str) -> dict[str, Any]:
        if self.uses_images:
            return {"x": self.images[split]}
        return {"x": self.arrays[layer][split], "y": self.labels[split], "batch_size": self.batch_size}

    def train_args(self, layer: str) -> dict[str, Any]:
        """fit() arguments; image datasets arrive shuffled, arrays are shuffled by Keras."""
        return {**self.fit_args(layer, "train"), "shuffle": not self.uses_images,
                "validation_data": self.validation(layer)}

    def validation(self, layer: str):
        args = self.fit_args(layer, "validation")
        return args["x"] if self.uses_images else (args["x"], args["y"])


def _float(hp, name: str, r: Range, step: float | None = None):
    if r.min == r.max:
        return hp.Fixed(name, r.min)
    kw = {"sampling": "log"} if r.log else {"step": step}
    return hp.Float(name, min_value=r.min, max_value=r.max, default=r.default, **kw)


def declare_head(hp, space: SearchSpace) -> tuple[int, float, float]:
    units = hp.Choice("units", list(space.units.values), default=space.units.default)
    dropout = _float(hp, "dropout", space.dropout, step=0.05)
    lr = _float(hp, "learning_rate", space.learning_rate)
    return units, dropout, lr


def make_head(input_shape, units: int, dropout: float) -> keras.Model:
    """The tutorial's classifier: Flatten, Dense(units, relu), Dropout, Dense(1, sigmoid)."""
    inputs = keras.Input(input_shape, name="features")
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="head")


def augmentation() -> keras.Sequential:
    """Random flip, rotation and zoom, as in the book version of this experiment."""
    return keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                             keras.layers.RandomZoom(0.2)], name="augmentation")


def _on_images(trained: keras.Model, frozen: keras.Model, image_size: int, augment: bool) -> keras.Model:
    """Put the frozen part (preprocessing + backbone below the trained part) in front."""
    frozen.trainable = False
    images = keras.Input((image_size, image_size, 3), name="images")
    x = augmentation()(images) if augment else images
    x = frozen(x, training=False)
    return keras.Model(images, trained(x), name="network")


def _compile(model: keras.Model, optimizer) -> None:
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])


class FeatureExtraction(kt.HyperModel):
    """Train only the head, on the frozen backbone's output."""

    method = "feature-extraction"

    def __init__(self, space: SearchSpace, top_shape, epochs: int, frozen=None,
                 image_size: int = 0, augment: bool = False):
        super().__init__(name=self.method)
        self.space, self.top_shape, self.epochs = space, top_shape, epochs
        self.frozen, self.image_size, self.augment = frozen, image_size, augment

    def declare_hyperparameters(self, hp):
        declare_head(hp, self.space)

    def build(self, hp):
        units, dropout, lr = declare_head(hp, self.space)
        model = make_head(self.top_shape, units, dropout)
        if self.frozen is not None:
            model = _on_images(model, self.frozen, self.image_size, self.augment)
        _compile(model, keras.optimizers.Adam(learning_rate=lr))
        return model

    def fit(self, hp, model, data: TrialData, callbacks=(), epochs=None, **kwargs):
        epochs = epochs or self.epochs
        return [model.fit(**data.train_args("top"), epochs=epochs, callbacks=list(callbacks), verbose=0)]


class FineTune(kt.HyperModel):
    """Phase 1: head on the frozen base. Phase 2: unfreeze the top block, lower learning rate."""

    method = "fine-tune"

    def __init__(self, space: SearchSpace, top_block: keras.Model, epochs: int, frozen=None,
                 image_size: int = 0, augment: bool = False):
        super().__init__(name=self.method)
        self.space, self.top_block, self.epochs = space, top_block, epochs
        self.frozen, self.image_size, self.augment = frozen, image_size, augment

    def declare_hyperparameters(self, hp):
        declare_head(hp, self.space)
        _float(hp, "fine_tune_learning_rate", self.space.fine_tune_learning_rate)

    def build(self, hp):
        units, dropout, _ = declare_head(hp, self.space)
        _float(hp, "fine_tune_learning_rate", self.space.fine_tune_learning_rate)
        top = fresh_copy(self.top_block)  # every trial starts from the pretrained weights
        head = make_head(tuple(top.output.shape[1:]), units, dropout)
        inputs = keras.Input(tuple(top.input.shape[1:]), name="cut_features")
        # training=False keeps BatchNormalization in inference mode while its weights train.
        model = keras.Model(inputs, head(top(inputs, training=False)), name="top_and_head")
        if self.frozen is not None:
            model = _on_images(model, self.frozen, self.image_size, self.augment)
        return model

    def fit(self, hp, model, data: TrialData, callbacks=(), epochs=None, **kwargs):
        epochs = epochs or self.epochs
        callbacks = list(callbacks)
        head, top = _find(model, "head"), _find(model, "top_block")
        top.trainable = False
        if data.uses_images:  # the whole network, as the tutorial trains it
            phase1, layer = model, "images"
        else:  # without augmentation phase 1 is exactly the head on cached top features
            phase1, layer = head, "top"
        _compile(phase1, keras.optimizers.Adam(learning_rate=hp.get("learning_rate")))
        h1 = phase1.fit(**data.train_args(layer), epochs=epochs, callbacks=callbacks, verbose=0)
        top.trainable = True  # trainable changes only take effect after compile
        _compile(model, keras.optimizers.RMSprop(learning_rate=hp.get("fine_tune_learning_rate")))
        h2 = model.fit(**data.train_args("cut"), epochs=2 * epochs, initial_epoch=epochs,
                       callbacks=callbacks, verbose=0)
        return [h1, h2]


def _find(model: keras.Model, name: str) -> keras.Model:
    """A named sub-model, looking inside the image wrapper when there is one."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            try:
                return _find(layer, name)
            except KeyError:
                pass
    raise KeyError(name)


METHODS = {FeatureExtraction.method: FeatureExtraction, FineTune.method: FineTune}
