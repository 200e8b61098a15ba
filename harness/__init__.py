"""harness: transfer-learning sweeps with KerasTuner, tracked in MLflow."""

import os

from harness import _quiet as quiet

# Before TensorFlow is first imported: keep its C++ start-up chatter off the terminal.
quiet.install()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
