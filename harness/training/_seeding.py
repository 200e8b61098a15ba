"""One function sets every random source (Python, NumPy, TensorFlow via Keras, the view schedule)."""

import logging

import keras

# Each trial compiles new models, which TensorFlow reports as "retracing"; expected here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

_current = 0


def seed_everything(seed: int) -> None:
    global _current
    _current = seed
    keras.utils.set_random_seed(seed)


def current_seed() -> int:
    """The seed last set: a trial draws its schedule of augmented views from it."""
    return _current
