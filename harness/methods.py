"""The two transfer-learning methods as keras-tuner HyperModels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner as kt
import numpy as np

from harness import metrics
from harness.backbones import fresh_copy
from harness.config import Range, SearchSpace
from harness.optimizers import FusedAdam, FusedRMSprop


PREDICT_ROWS = 1024  # rows per forward call when scoring cached features: bounds activation memory


@dataclass
class TrialData:
    """What trials train on: cached features (`arrays[layer][split]`, the cache's memory-mapped
    files) or, when trials run the frozen backbone themselves, batched (image, label) datasets
    (`images[split]`)."""

    labels: dict[str, np.ndarray]
    files: dict[str, list[str]]
    batch_size: int
    class_names: tuple[str, ...]
    arrays: dict[str, dict[str, np.ndarray]] | None = None
    images: dict[str, Any] | None = None
    _tensors: dict = field(default_factory=dict, repr=False)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def uses_images(self) -> bool:
        return self.images is not None

    def dataset(self, layer: str, split: str):
        """Batched (x, y); the train split reshuffled every epoch (image datasets shuffle themselves).

        Cached features (memory-mapped float16) are read into one float32 tensor the first time
        a layer and split is asked for, so memory holds one copy of only what trials use. Each
        call makes a fresh pipeline, so a trial's shuffle order follows from its own seed. A
        batch is one gather, not 64 slices.
        """
        if self.uses_images:
            return self.images[split]
        import tensorflow as tf

        x, y = self._tensor(layer, split)
        rows = tf.data.Dataset.range(len(self.labels[split]))
        if split == "train":
            rows = rows.shuffle(len(self.labels[split]), reshuffle_each_iteration=True)
        return rows.batch(self.batch_size).map(lambda i: (tf.gather(x, i), tf.gather(y, i))).prefetch(2)

    def _tensor(self, layer: str, split: str):
        import tensorflow as tf

        if (layer, split) not in self._tensors:
            # float16 as cached, widened by TensorFlow's multithreaded cast: faster than NumPy's
            x = tf.cast(tf.constant(self.arrays[layer][split]), "float32")
            self._tensors[layer, split] = (x, tf.constant(self.labels[split], dtype=label_dtype(self.n_classes)))
        return self._tensors[layer, split]

    @property
    def train_steps(self) -> int:
        return math.ceil(len(self.labels["train"]) / self.batch_size)

    def train_args(self, layer: str) -> dict[str, Any]:
        """fit() arguments for one phase: the train split, reshuffled every epoch, as one endless
        dataset cut into epochs by steps_per_epoch, so a fit sets up its input pipeline once, not
        once per epoch. Validation is a callback's (harness.callbacks.Validation)."""
        return {"x": self.dataset(layer, "train").repeat(), "steps_per_epoch": self.train_steps, "shuffle": False}

    def predict(self, model, layer: str, split: str) -> np.ndarray:
        """`model`'s outputs on one split, in file order: cached features straight from the tensor
        in memory (no input pipeline), in as few calls as memory allows; images batch by batch."""
        if self.uses_images:
            batches = (x for x, _ in self.images[split])
        else:
            x, n = self._tensor(layer, split)[0], len(self.labels[split])
            batches = [x] if n <= PREDICT_ROWS else (x[i:i + PREDICT_ROWS] for i in range(0, n, PREDICT_ROWS))
        return np.concatenate([model.predict_on_batch(b) for b in batches])

    def loss_and_accuracy(self, split: str, outputs: np.ndarray) -> tuple[float, float]:
        """The training loss and the accuracy of `outputs` on one split, as Keras' fit() reports them."""
        labels = self.labels[split]
        correct = metrics.predicted(class_probabilities(outputs)) == np.asarray(labels).astype(int)
        return mean_loss(self.n_classes, labels, outputs), float(np.mean(correct))


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


def make_head(input_shape, units: int, dropout: float, n_classes: int) -> keras.Model:
    """The tutorial's classifier: Flatten, Dense(units, relu), Dropout, then one sigmoid unit
    for two classes (exactly the tutorial's) or a softmax over three or more."""
    inputs = keras.Input(input_shape, name="features")
    x = keras.layers.Flatten()(inputs)
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


def label_dtype(n_classes: int) -> str:
    return "float32" if n_classes == 2 else "int32"


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(n, classes) probabilities from a head's output: [1 - p, p] for the sigmoid unit."""
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim == 1 or outputs.shape[1] == 1:
        p = outputs.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return outputs


def augmentation() -> keras.Sequential:
    """Random flip, rotation and zoom, as in the book version of this experiment."""
    return keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                             keras.layers.RandomZoom(0.2)], name="augmentation")


def on_images(trained: keras.Model, frozen: keras.Model, image_size: int, augment: bool = False,
              name: str = "network") -> keras.Model:
    """Images -> class probabilities: the frozen part (preprocessing + backbone below the trained
    part) in front."""
    frozen.trainable = False
    images = keras.Input((image_size, image_size, 3), name="images")
    x = augmentation()(images) if augment else images
    x = frozen(x, training=False)
    return keras.Model(images, trained(x), name=name)


STEPS_PER_EXECUTION = 32


def steps_per_execution(steps_per_epoch: int) -> int:
    """The most batches per call into TensorFlow, up to 32, that divide an epoch exactly: Keras
    runs whole executions, so only then does one endless dataset split into exact epochs."""
    return next(n for n in range(min(STEPS_PER_EXECUTION, steps_per_epoch), 0, -1) if steps_per_epoch % n == 0)


def _compile(model: keras.Model, optimizer, n_classes: int, data: TrialData) -> None:
    """Adam/RMSprop as Keras defines them, updated by one fused kernel (see harness.optimizers).

    steps_per_execution runs up to 32 batches per call into TensorFlow: a cached-feature step
    takes milliseconds, so Python's per-step dispatch was a tenth of the epoch.
    """
    model.compile(optimizer=optimizer, loss=loss_for(n_classes), metrics=["accuracy"],
                  steps_per_execution=steps_per_execution(data.train_steps))


class FeatureExtraction(kt.HyperModel):
    """Train only the head, on the frozen backbone's output."""

    method = "feature-extraction"
    input_layer = "top"  # the cached layer the trained model reads (ignored when trials run on images)

    def __init__(self, space: SearchSpace, top_shape, epochs: int, n_classes: int, frozen=None,
                 image_size: int = 0, augment: bool = False):
        super().__init__(name=self.method)
        self.space, self.top_shape, self.epochs, self.n_classes = space, top_shape, epochs, n_classes
        self.frozen, self.image_size, self.augment = frozen, image_size, augment

    def declare_hyperparameters(self, hp):
        declare_head(hp, self.space)

    def build(self, hp):
        units, dropout, _ = declare_head(hp, self.space)
        model = make_head(self.top_shape, units, dropout, self.n_classes)
        if self.frozen is not None:
            model = on_images(model, self.frozen, self.image_size, self.augment)
        return model

    def fit(self, hp, model, data: TrialData, callbacks=(), epochs=None, initial_epoch=0, validation=None, **kwargs):
        """Epochs [initial_epoch, epochs) of the head's training (a hyperband round continues a
        saved trial from its initial_epoch); epochs defaults to the sweep's."""
        end = epochs or self.epochs
        _compile(model, FusedAdam(learning_rate=hp.get("learning_rate")), self.n_classes, data)
        return [_fit(model, data, self.input_layer, initial_epoch, end, callbacks, validation)]


class FineTune(kt.HyperModel):
    """Phase 1: head on the frozen base. Phase 2: unfreeze the top block, lower learning rate."""

    method = "fine-tune"
    input_layer = "cut"

    def __init__(self, space: SearchSpace, top_block: keras.Model, epochs: int, n_classes: int, frozen=None,
                 image_size: int = 0, augment: bool = False):
        super().__init__(name=self.method)
        self.space, self.top_block, self.epochs, self.n_classes = space, top_block, epochs, n_classes
        self.frozen, self.image_size, self.augment = frozen, image_size, augment

    def declare_hyperparameters(self, hp):
        declare_head(hp, self.space)
        _float(hp, "fine_tune_learning_rate", self.space.fine_tune_learning_rate)

    def build(self, hp):
        units, dropout, _ = declare_head(hp, self.space)
        _float(hp, "fine_tune_learning_rate", self.space.fine_tune_learning_rate)
        top = fresh_copy(self.top_block)  # every trial starts from the pretrained weights
        head = make_head(tuple(top.output.shape[1:]), units, dropout, self.n_classes)
        inputs = keras.Input(tuple(top.input.shape[1:]), name="cut_features")
        # training=False keeps BatchNormalization in inference mode while its weights train.
        model = keras.Model(inputs, head(top(inputs, training=False)), name="top_and_head")
        if self.frozen is not None:
            model = on_images(model, self.frozen, self.image_size, self.augment)
        return model

    def fit(self, hp, model, data: TrialData, callbacks=(), epochs=None, initial_epoch=0, validation=None, **kwargs):
        """Epochs [initial_epoch, epochs) of the trial's schedule, which counts on across the phases:
        0..E-1 train the head on the frozen base (phase 1), E..2E-1 the top block and head (phase 2),
        E = the sweep's epochs; epochs defaults to 2E. A shorter hyperband budget trains the head
        only, and a continued trial picks up its schedule where the saved one stopped."""
        end = epochs or 2 * self.epochs
        head, top = _find(model, "head"), _find(model, "top_block")
        histories = []
        if initial_epoch < min(end, self.epochs):
            top.trainable = False
            if data.uses_images:  # the whole network, as the tutorial trains it
                phase1, layer = model, "images"
            else:  # without augmentation phase 1 is exactly the head on cached top features
                phase1, layer = head, "top"
            _compile(phase1, FusedAdam(learning_rate=hp.get("learning_rate")), self.n_classes, data)
            histories.append(_fit(phase1, data, layer, initial_epoch, min(end, self.epochs), callbacks, validation))
        if end > self.epochs:
            top.trainable = True  # trainable changes only take effect after compile
            _compile(model, FusedRMSprop(learning_rate=hp.get("fine_tune_learning_rate")), self.n_classes, data)
            histories.append(_fit(model, data, self.input_layer, max(initial_epoch, self.epochs), end, callbacks,
                                  validation))
        return histories


def _fit(model: keras.Model, data: TrialData, layer: str, start: int, end: int, callbacks, validation):
    """One phase: epochs [start, end) on the cached `layer` (or images); `validation` (a
    harness.callbacks.Validation) scores each epoch first, so the callbacks after it see val_*."""
    callbacks = list(callbacks)
    if validation is not None:
        validation.layer = layer
        callbacks.insert(0, validation)
    return model.fit(**data.train_args(layer), initial_epoch=start, epochs=end, callbacks=callbacks, verbose=0)


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
