"""What trials train on: cached features, K cached augmented views, or images; per image size."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.training import _metrics as metrics
from harness.data import _views as views_
from harness.training._rows import Rows
from harness.training._heads import class_probabilities, label_dtype, mean_loss
from harness.training._seeding import current_seed
from harness.training import _variants as variants


PREDICT_ROWS = 1024  # rows per forward call when scoring cached features: bounds activation memory


@dataclass
class TrialData:
    """What trials train on: cached features (`arrays[layer][split]`, the cache's memory-mapped
    files) or, when trials run the frozen backbone themselves, batched (image, label) datasets
    (`images[split]`). With `views` = K the train split is K augmented views per image (cached
    features in rows image * K + view, or, on the naive path, `replay` = (decoded images,
    harness.data._augment.Views) recomputing them). Cached features are held in memory as cached
    (float16; the test split float32) or, `streamed`, read from their files batch by batch; both
    cast to float32 per batch and train in the same order, so they give the same numbers."""

    labels: dict[str, np.ndarray]
    files: dict[str, list[str]]
    batch_size: int
    class_names: tuple[str, ...]
    arrays: dict[str, dict[str, np.ndarray]] | None = None
    images: dict[str, Any] | None = None
    views: int = 0
    replay: tuple | None = None
    streamed: bool = False
    cut_layer: str = ""  # the backbone layer fine-tuning's frozen part ends with (logged per trial)
    _tensors: dict = field(default_factory=dict, repr=False)

    def for_trial(self, hp) -> "TrialData":
        """The data of the trial's frozen network: this, the only one (see VariantData)."""
        return self

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def uses_images(self) -> bool:
        return self.images is not None

    @property
    def reads(self) -> str:
        """How trials read their inputs: images, memory (cached features held in RAM) or stream."""
        return "images" if self.uses_images else "stream" if self.streamed else "memory"

    def dataset(self, layer: str, split: str):
        """Batched (x, y) of one split in file order, for evaluating a model; training takes
        train_args' shuffled feed."""
        if self.uses_images:
            return self.images[split]
        import tensorflow as tf

        y = tf.constant(self.labels[split], dtype=label_dtype(self.n_classes))
        fetch = self._fetch(layer, split, y, 1)
        n = len(self.labels[split])
        return tf.data.Dataset.range(n).batch(self.batch_size).map(fetch).prefetch(2)

    def _source(self, layer: str, split: str):
        """The rows as cached: their file (a Rows reader) when streamed, else one tensor in memory."""
        if (layer, split) not in self._tensors:
            array = self.arrays[layer][split]
            if self.streamed:
                self._tensors[layer, split] = Rows.of(array)
            else:
                import tensorflow as tf

                self._tensors[layer, split] = tf.constant(array)
        return self._tensors[layer, split]

    def _fetch(self, layer: str, split: str, labels, views: int):
        source = self._source(layer, split)
        if self.streamed:
            return views_.stream_features(source, labels, views)
        return views_.gather_features(source, labels, views)

    @property
    def train_steps(self) -> int:
        return math.ceil(len(self.labels["train"]) / self.batch_size)

    def train_args(self, layer: str, callbacks=(), first_epoch: int = 0) -> dict[str, Any]:
        """fit() arguments for one phase starting at `first_epoch`. Validation is a callback's
        (harness.training._callbacks.Validation). On cached features the train split is one endless
        feed cut into epochs by steps_per_epoch; epoch e's order (with views: one view per image)
        follows from the trial's seed and e alone."""
        args = {"shuffle": False, "callbacks": list(callbacks), "steps_per_epoch": self.train_steps}
        if self.uses_images and not self.views:
            return {**args, "x": self.images["train"].repeat()}
        import tensorflow as tf

        y = tf.constant(self.labels["train"], dtype=label_dtype(self.n_classes))
        k = max(self.views, 1)
        fetch = (views_.replay_images(self.replay[0], y, self.replay[1]) if self.replay is not None
                 else self._fetch(layer, "train", y, k))
        return {**args, "x": views_.feed(current_seed(), first_epoch, len(y), k, self.batch_size, fetch)}

    def predict(self, model, layer: str, split: str) -> np.ndarray:
        """`model`'s outputs on one split, in file order: cached features in chunks of PREDICT_ROWS
        (no input pipeline), cast to float32 as trials see them; images batch by batch."""
        if self.uses_images:
            return np.concatenate([model.predict_on_batch(x) for x, _ in self.images[split]])
        import tensorflow as tf

        source, n = self._source(layer, split), len(self.labels[split])
        read = source.read_range if self.streamed else lambda a, b: source[a:b]
        chunks = (read(i, min(i + PREDICT_ROWS, n)) for i in range(0, n, PREDICT_ROWS))
        return np.concatenate([model.predict_on_batch(tf.cast(c, "float32")) for c in chunks])

    def loss_and_accuracy(self, split: str, outputs: np.ndarray) -> tuple[float, float]:
        """The training loss and the accuracy of `outputs` on one split, as Keras' fit() reports them."""
        labels = self.labels[split]
        correct = metrics.predicted(class_probabilities(outputs)) == np.asarray(labels).astype(int)
        return mean_loss(self.n_classes, labels, outputs), float(np.mean(correct))


@dataclass
class VariantData:
    """Trial data per frozen network (harness.training._variants.Variant: backbone x image size x
    cut), when the sweep searches several: a trial takes its network's. Labels, files and classes
    are the same for every one."""

    by_variant: dict[variants.Variant, TrialData]

    def for_trial(self, hp) -> TrialData:
        return self.by_variant[variants.of_trial(hp, self.by_variant)]

    @property
    def _any(self) -> TrialData:
        return next(iter(self.by_variant.values()))

    labels = property(lambda self: self._any.labels)
    files = property(lambda self: self._any.files)
    class_names = property(lambda self: self._any.class_names)
    n_classes = property(lambda self: self._any.n_classes)
    reads = property(lambda self: "stream" if any(d.streamed for d in self.by_variant.values()) else self._any.reads)
