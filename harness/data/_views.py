"""Training on K cached augmented views: which view of each image an epoch uses, and feeding it.

Views are stored image-major: row `i * K + v` is view v of training image i. Epoch e of a trial
takes one view per image: over every K consecutive epochs (a cycle) each image goes through a
permutation of its K views, so every view is used before any repeats; the permutations and the
order of images are drawn per cycle and per epoch from the trial's seed. Plain cached features
are the case K = 1: each epoch a permutation of the rows.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def schedule(seed: int, epoch: int, images: int, views: int) -> np.ndarray:
    """The rows epoch `epoch` trains on, in training order: one view of every image."""
    cycle, slot = divmod(epoch, views)
    perms = np.argsort(np.random.default_rng([seed, cycle, 0]).random((images, views)), axis=1)
    order = np.random.default_rng([seed, epoch, 1]).permutation(images)
    return order * views + perms[order, slot]


def feed(seed: int, first_epoch: int, images: int, views: int, batch_size: int, fetch: Callable):
    """One endless training dataset for a fit starting at `first_epoch`: epoch e's batches are
    `fetch(rows)` over `schedule(seed, e, ...)` (views = 1: a permutation of the rows). Endless and
    cut into epochs by steps_per_epoch, so a fit sets up its input pipeline once; the order
    depends on the epoch number alone, so every way of reading the rows trains on the same batches."""
    import tensorflow as tf

    def rows_of(epoch):
        return schedule(seed, int(epoch), images, views).astype("int64")

    def epoch_batches(epoch):
        rows = tf.numpy_function(rows_of, [epoch], tf.int64, stateful=False)
        rows.set_shape([images])
        steps = tf.data.Dataset.range(math.ceil(images / batch_size))
        return steps.map(lambda b: rows[b * batch_size:tf.minimum((b + 1) * batch_size, images)])

    epochs = tf.data.Dataset.range(first_epoch, 2 ** 62)
    return epochs.flat_map(epoch_batches).map(fetch, num_parallel_calls=2, deterministic=True).prefetch(2)


def gather_features(features, labels, views: int):
    """fetch for cached features held in memory: rows gathered as cached (float16) and cast to
    float32 per batch; label i belongs to rows i * views .. i * views + views - 1."""
    import tensorflow as tf

    def fetch(rows):
        return tf.cast(tf.gather(features, rows), "float32"), tf.gather(labels, rows // views)

    return fetch


def stream_features(rows_file, labels, views: int):
    """fetch for cached features read from their file batch by batch (what does not fit in
    memory; `rows_file`: a harness.training._rows.Rows): the same rows and the same float32 values
    as gather_features."""
    import tensorflow as tf

    def read(rows):
        return rows_file.read(rows).astype("float32")

    def fetch(rows):
        x = tf.numpy_function(read, [rows], tf.float32, stateful=False)
        x.set_shape([None, *rows_file.shape[1:]])
        return x, tf.gather(labels, rows // views)

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
