"""What trials train on: cached features, K cached augmented views, or images; per image size."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.training import _metrics as metrics
from harness.data import _views as views
from harness.training._heads import class_probabilities, label_dtype, mean_loss
from harness.training._seeding import current_seed


PREDICT_ROWS = 1024  # rows per forward call when scoring cached features: bounds activation memory


@dataclass
class TrialData:
    """What trials train on: cached features (`arrays[layer][split]`, the cache's memory-mapped
    files) or, when trials run the frozen backbone themselves, batched (image, label) datasets
    (`images[split]`). With `views` = K the train split is K augmented views per image (cached
    features in rows image * K + view, or, on the naive path, `replay` = (decoded images,
    harness.data._augment.Views) recomputing them)."""

    labels: dict[str, np.ndarray]
    files: dict[str, list[str]]
    batch_size: int
    class_names: tuple[str, ...]
    arrays: dict[str, dict[str, np.ndarray]] | None = None
    images: dict[str, Any] | None = None
    views: int = 0
    replay: tuple | None = None
    _tensors: dict = field(default_factory=dict, repr=False)

    def for_trial(self, hp) -> "TrialData":
        """The data of the trial's image size: this, the only one (see SizedData)."""
        return self

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

    def train_args(self, layer: str, callbacks=()) -> dict[str, Any]:
        """fit() arguments for one phase. Validation is a callback's (harness.training._callbacks.Validation).
        The train split, reshuffled every epoch, is one endless dataset cut into epochs by
        steps_per_epoch, so a fit sets up its input pipeline once, not once per epoch. With views,
        it is one view per image per epoch, scheduled from the trial's seed by a callback."""
        args = {"shuffle": False, "callbacks": list(callbacks)}
        if not self.views:
            return {**args, "x": self.dataset(layer, "train").repeat(), "steps_per_epoch": self.train_steps}
        feed = views.Feed(current_seed(), len(self.labels["train"]), self.views, self.batch_size)
        args["callbacks"].append(feed.callback)
        return {**args, "x": feed.dataset(self._view_fetch(layer))}

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

    def _view_fetch(self, layer: str):
        """rows -> (x, y) batches of views. Cached views stay float16 in memory (K copies of the
        train split would double in float32) and are cast per batch."""
        import tensorflow as tf

        y = tf.constant(self.labels["train"], dtype=label_dtype(self.n_classes))
        if self.replay is not None:
            return views.replay_images(self.replay[0], y, self.replay[1])
        if (layer, "views") not in self._tensors:
            self._tensors[layer, "views"] = tf.constant(self.arrays[layer]["train"], dtype="float16")
        return views.gather_features(self._tensors[layer, "views"], y, self.views)


@dataclass
class SizedData:
    """Trial data per image size, when the sweep searches image sizes: a trial takes its size's.
    Labels, files and classes are the same for every size."""

    by_size: dict[int, TrialData]

    def for_trial(self, hp) -> TrialData:
        return self.by_size[hp.get("image_size")]

    @property
    def _any(self) -> TrialData:
        return next(iter(self.by_size.values()))

    labels = property(lambda self: self._any.labels)
    files = property(lambda self: self._any.files)
    class_names = property(lambda self: self._any.class_names)
    n_classes = property(lambda self: self._any.n_classes)
