"""harness: transfer-learning sweeps with KerasTuner, tracked in MLflow."""

import os

# Set before TensorFlow is first imported: keep its C++ start-up chatter off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
