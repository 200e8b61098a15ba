"""harness: transfer-learning sweeps (feature extraction vs fine-tuning) with KerasTuner, tracked in
MLflow. The Python API is what the CLI wraps:

    import harness
    result = harness.sweep("feature-extraction", data="photos", max_trials=3)
    comparison = harness.compare(experiment="photos")
"""

import os

from harness import _quiet

# Before TensorFlow is first imported: keep its C++ start-up chatter off the terminal.
_quiet.install()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
__all__ = ["HarnessError", "StoreError", "__version__", "compare", "predict", "sweep"]

from harness.errors import HarnessError, StoreError  # noqa: E402

_API = ("compare", "predict", "sweep")


def __getattr__(name: str):
    # The API imports TensorFlow and MLflow: only when first used, so `harness --help` stays quick.
    if name in _API:
        from harness.study import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
