"""Data augmentation as Keras preprocessing layers: fresh every call, or K fixed views per image.

A view is deterministic per (image, view): each layer's random parameters for every row
(`image * K + view`) are drawn once, by the layer's own `get_random_transformation` from a
seeded generator, and applied by the layer's own `transform_images`. So the same view comes
out whether it is computed for the feature cache, in file order, or replayed in a shuffled
batch by the naive path.
"""

from __future__ import annotations

import zlib

import keras
import numpy as np

from harness.config import Augmentation

DRAW = 256  # rows drawn per call; every per-image parameter has this leading dimension


def make_layers(settings: Augmentation, seed: int | None = None) -> list[keras.layers.Layer]:
    """The enabled transformations, in the book's order (flip, rotation, zoom) then translation,
    contrast. Layer i draws from seed + i when a seed is given."""
    def s(i):
        return None if seed is None else seed + i

    layers = []
    if settings.flip != "none":
        layers.append(keras.layers.RandomFlip(settings.flip, seed=s(0)))
    if settings.rotation:
        layers.append(keras.layers.RandomRotation(settings.rotation, seed=s(1)))
    if settings.zoom:
        layers.append(keras.layers.RandomZoom(settings.zoom, seed=s(2)))
    if settings.translation:
        layers.append(keras.layers.RandomTranslation(settings.translation, settings.translation, seed=s(3)))
    if settings.contrast:
        layers.append(keras.layers.RandomContrast(settings.contrast, seed=s(4)))
    return layers


def fresh(settings: Augmentation) -> keras.Sequential:
    """New random transformations at every call in training, none at inference (the tutorial's way)."""
    return keras.Sequential(make_layers(settings), name="augmentation")


def identity(settings: Augmentation, views: int) -> str:
    """What makes two sets of views the same: the settings, K and the seed (for the cache key)."""
    return f"views={views};" + ";".join(f"{k}={v}" for k, v in sorted(settings.__dict__.items()))


class Views:
    """K fixed augmented views of each of `images` images of `size` px.

    `apply(batch, rows)` augments a batch whose image i is row `rows[i]` = image * K + view.
    """

    def __init__(self, settings: Augmentation, views: int, images: int, size: int):
        self.k, self.n = views, images
        base = zlib.crc32(identity(settings, views).encode()) % (2**31 - 16)
        self.layers = make_layers(settings, seed=base)
        self.tables = [_draw(layer, views * images, size) for layer in self.layers]

    def apply(self, batch, rows):
        import tensorflow as tf

        rows = tf.convert_to_tensor(rows, dtype="int64")
        x = tf.cast(batch, "float32")
        for layer, table in zip(self.layers, self.tables):
            params = {k: tf.gather(v, rows) for k, v in table.items()}
            x = layer.transform_images(x, params, training=True)
        return x


def _draw(layer, count: int, size: int) -> dict[str, np.ndarray]:
    """Per-row random parameters of `layer` for `count` rows, in row order, from its seeded generator.

    The layer reads only the shape of what it is given, so a small dummy batch stands in for images.
    """
    dummy = np.zeros((DRAW, size, size, 1), "uint8")
    chunks: dict[str, list] = {}
    for _ in range(0, count, DRAW):
        t = layer.get_random_transformation(dummy, training=True)
        for key, value in t.items():
            value = np.asarray(value) if hasattr(value, "shape") else None
            if value is not None and value.ndim >= 1 and value.shape[0] == DRAW:
                chunks.setdefault(key, []).append(value)
    return {k: np.concatenate(v)[:count] for k, v in chunks.items()}
