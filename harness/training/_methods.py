"""The two transfer-learning methods as keras-tuner HyperModels."""

from __future__ import annotations

import keras
import keras_tuner as kt

from harness.data import _augment as augmentation
from harness.backbones._registry import fresh_copy
from harness.config import Augmentation, Range, SearchSpace
from harness.training._optimizers import FusedAdam, FusedRMSprop
from harness.training._heads import loss_for, make_head
from harness.training._trial_data import TrialData
from harness.training import _variants as variants


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


def choose(hp, name: str, values: tuple):
    """A searched choice (the first value is its default) when there are several values; else the
    one value, a fixed setting rather than a hyperparameter."""
    if len(values) == 1:
        return values[0]
    return hp.Choice(name, list(values), default=values[0])


def declare_input(hp, keys, poolings: tuple[str, ...]) -> tuple:
    """(the trial's frozen network: a harness.training._variants.Variant key, its pooling)."""
    return variants.declare(hp, keys), choose(hp, "pooling", poolings)


def on_images(trained: keras.Model, frozen: keras.Model, image_size: int, augment: Augmentation | None = None,
              name: str = "network") -> keras.Model:
    """Images -> class probabilities: the frozen part (preprocessing + backbone below the trained
    part) in front, and fresh random augmentation layers before it when `augment` is given."""
    frozen.trainable = False
    images = keras.Input((image_size, image_size, 3), name="images")
    x = augmentation.fresh(augment)(images) if augment else images
    x = frozen(x, training=False)
    return keras.Model(images, trained(x), name=name)


STEPS_PER_EXECUTION = 32


def steps_per_execution(steps_per_epoch: int) -> int:
    """The most batches per call into TensorFlow, up to 32, that divide an epoch exactly: Keras
    runs whole executions, so only then does one endless dataset split into exact epochs."""
    return next(n for n in range(min(STEPS_PER_EXECUTION, steps_per_epoch), 0, -1) if steps_per_epoch % n == 0)


def _compile(model: keras.Model, optimizer, n_classes: int, data: TrialData) -> None:
    """Adam/RMSprop as Keras defines them, updated by one fused kernel (see harness.training._optimizers).

    steps_per_execution runs up to 32 batches per call into TensorFlow: a cached-feature step
    takes milliseconds, so Python's per-step dispatch was a tenth of the epoch.
    """
    model.compile(optimizer=optimizer, loss=loss_for(n_classes), metrics=["accuracy"],
                  steps_per_execution=steps_per_execution(data.train_steps))


def _per_variant(value) -> dict:
    """{Variant: value}; a bare value stands for the one network (tests, single-network callers)."""
    return value if isinstance(value, dict) else {0: value}


class FeatureExtraction(kt.HyperModel):
    """Train only the head, on the frozen backbone's output.

    `top_shape`, and `frozen` when trials run on images, are per frozen network ({Variant: ...});
    several backbones or sizes, or several `poolings`, make them hyperparameters."""

    method = "feature-extraction"
    input_layer = "top"  # the cached layer the trained model reads (ignored when trials run on images)
    trained_part = "head"  # the sub-model trials train; the logged winner puts the frozen backbone before it

    def __init__(self, space: SearchSpace, top_shape, epochs: int, n_classes: int, frozen=None,
                 augment: Augmentation | None = None, poolings: tuple[str, ...] = ("flatten",)):
        super().__init__(name=self.method)
        self.space, self.shapes, self.epochs, self.n_classes = space, _per_variant(top_shape), epochs, n_classes
        self.frozen, self.augment, self.poolings = frozen, augment, poolings

    def declare_hyperparameters(self, hp):
        declare_head(hp, self.space)
        declare_input(hp, tuple(self.shapes), self.poolings)

    def build(self, hp):
        units, dropout, _ = declare_head(hp, self.space)
        key, pooling = declare_input(hp, tuple(self.shapes), self.poolings)
        model = make_head(self.shapes[key], units, dropout, self.n_classes, pooling)
        if self.frozen is not None:
            model = on_images(model, self.frozen[key], key.image_size, self.augment)
        return model

    def fit(self, hp, model, data: TrialData, callbacks=(), epochs=None, initial_epoch=0, validation=None, **kwargs):
        """Epochs [initial_epoch, epochs) of the head's training (a hyperband round continues a
        saved trial from its initial_epoch); epochs defaults to the sweep's."""
        end, data = epochs or self.epochs, data.for_trial(hp)
        _compile(model, FusedAdam(learning_rate=hp.get("learning_rate")), self.n_classes, data)
        return [_fit(model, data, self.input_layer, initial_epoch, end, callbacks, validation)]


class FineTune(kt.HyperModel):
    """Phase 1: head on the frozen base. Phase 2: unfreeze the top block, lower learning rate.

    `top_block` (the template each trial copies), and `frozen` when trials run on images, are
    per frozen network ({Variant: ...}), as for FeatureExtraction."""

    method = "fine-tune"
    input_layer = "cut"
    trained_part = "top_and_head"

    def __init__(self, space: SearchSpace, top_block, epochs: int, n_classes: int, frozen=None,
                 augment: Augmentation | None = None, poolings: tuple[str, ...] = ("flatten",)):
        super().__init__(name=self.method)
        self.space, self.top_blocks, self.epochs, self.n_classes = space, _per_variant(top_block), epochs, n_classes
        self.frozen, self.augment, self.poolings = frozen, augment, poolings

    def declare_hyperparameters(self, hp):
        declare_head(hp, self.space)
        _float(hp, "fine_tune_learning_rate", self.space.fine_tune_learning_rate)
        declare_input(hp, tuple(self.top_blocks), self.poolings)

    def build(self, hp):
        units, dropout, _ = declare_head(hp, self.space)
        _float(hp, "fine_tune_learning_rate", self.space.fine_tune_learning_rate)
        key, pooling = declare_input(hp, tuple(self.top_blocks), self.poolings)
        top = fresh_copy(self.top_blocks[key])  # every trial starts from the pretrained weights
        head = make_head(tuple(top.output.shape[1:]), units, dropout, self.n_classes, pooling)
        inputs = keras.Input(tuple(top.input.shape[1:]), name="cut_features")
        # training=False keeps BatchNormalization in inference mode while its weights train.
        model = keras.Model(inputs, head(top(inputs, training=False)), name="top_and_head")
        if self.frozen is not None:
            model = on_images(model, self.frozen[key], key.image_size, self.augment)
        return model

    def fit(self, hp, model, data: TrialData, callbacks=(), epochs=None, initial_epoch=0, validation=None, **kwargs):
        """Epochs [initial_epoch, epochs) of the trial's schedule, which counts on across the phases:
        0..E-1 train the head on the frozen base (phase 1), E..2E-1 the top block and head (phase 2),
        E = the sweep's epochs; epochs defaults to 2E. A shorter hyperband budget trains the head
        only, and a continued trial picks up its schedule where the saved one stopped."""
        end, data = epochs or 2 * self.epochs, data.for_trial(hp)
        head, top = _find(model, "head"), _find(model, "top_block")
        histories = []
        if initial_epoch < min(end, self.epochs):
            top.trainable = False
            if data.uses_images:  # the whole network, as the tutorial trains it
                phase1, layer = model, "images"
            else:  # phase 1 is exactly the head on cached top features
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
    harness.training._callbacks.Validation, made here when not given) scores each epoch first, so the
    callbacks after it see val_*."""
    from harness.training._callbacks import Validation

    validation = validation or Validation(data)
    validation.layer = layer
    callbacks = [validation, *callbacks]
    return model.fit(**data.train_args(layer, callbacks, start), initial_epoch=start, epochs=end, verbose=0)


def trained_part(model: keras.Model, name: str) -> keras.Model:
    """The named trained sub-model: `model` itself on cached features, inside it on images."""
    return model if model.name == name else _find(model, name)


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
