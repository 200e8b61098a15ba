"""One function sets every random source (Python, NumPy, TensorFlow via Keras)."""

import logging

import keras

# Each trial compiles new models, which TensorFlow reports as "retracing"; expected here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
