"""Training on K cached augmented views: which view of each image an epoch uses, and feeding it.

Views are stored image-major: row `i * K + v` is view v of training image i. Epoch e of a trial
takes one view per image: over every K consecutive epochs (a cycle) each image goes through a
permutation of its K views, so every view is used before any repeats; the permutations and the
order of images are drawn per cycle and per epoch from the trial's seed.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
import numpy as np


def schedule(seed: int, epoch: int, images: int, views: int) -> np.ndarray:
    """The rows epoch `epoch` trains on, in training order: one view of every image."""
    cycle, slot = divmod(epoch, views)
    perms = np.argsort(np.random.default_rng([seed, cycle, 0]).random((images, views)), axis=1)
    order = np.random.default_rng([seed, epoch, 1]).permutation(images)
    return order * views + perms[order, slot]


class Feed:
    """A training dataset over the views: `on_epoch_begin` sets the rows of that epoch (a Keras
    callback, so it follows fit's epoch numbering across both fine-tuning phases)."""

    def __init__(self, seed: int, images: int, views: int, batch_size: int):
        import tensorflow as tf

        self.seed, self.images, self.views, self.batch_size = seed, images, views, batch_size
        self.rows = tf.Variable(schedule(seed, 0, images, views), trainable=False, dtype="int64")
        self.callback = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs=None: self.rows.assign(
            schedule(self.seed, epoch, self.images, self.views)))

    def dataset(self, fetch: Callable):
        """Batches `fetch(rows)` of the current epoch's rows. Keras makes a new iterator per epoch,
        after on_epoch_begin, so each epoch reads its own rows."""
        import tensorflow as tf

        size, n = self.batch_size, self.images
        batches = tf.data.Dataset.range(math.ceil(n / size))
        return batches.map(lambda b: fetch(self.rows[b * size:tf.minimum((b + 1) * size, n)])).prefetch(2)


def gather_features(features, labels, views: int):
    """fetch for cached views: float16 rows gathered and cast to float32 per batch."""
    import tensorflow as tf

    def fetch(rows):
        return tf.cast(tf.gather(features, rows), "float32"), tf.gather(labels, rows // views)

    return fetch


def replay_images(images, labels, augmenter):
    """fetch for the naive path: the same views recomputed from the decoded images every epoch."""
    import tensorflow as tf

    def fetch(rows):
        return augmenter.apply(tf.gather(images, rows // augmenter.k), rows), tf.gather(labels, rows // augmenter.k)

    return fetch


def extraction_batches(images, augmenter, batch_size: int):
    """(augmented images, labels) batches in row order, for the feature cache. Each decoded file is
    repeated K times in a row (rows image * K + view), so every file is decoded once; augmenting runs
    in tf.data's threads while the backbone works on the previous batch."""
    import tensorflow as tf

    k = augmenter.k

    def augmented(b, batch):
        x, y = batch
        rows = b * batch_size + tf.range(tf.shape(x, out_type="int64")[0])
        return augmenter.apply(x, rows), y

    repeated = images.unbatch().flat_map(lambda x, y: tf.data.Dataset.from_tensors((x, y)).repeat(k))
    return repeated.batch(batch_size).enumerate().map(augmented, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
