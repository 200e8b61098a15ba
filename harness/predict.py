"""Using the winner: load a sweep's logged image network and name the class of each photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import json

from harness import backbones  # noqa: F401  registers Preprocess, which every logged network holds
from harness.data import TUTORIAL_CLASSES
from harness.errors import HarnessError
from harness.methods import class_probabilities
from harness.tracking import Tracker, load_keras_model, resolve_store

SWEEP_FILTER = "tags.sweep = 'true' and attributes.status = 'FINISHED'"


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str  # the most probable class
    probability: float  # of that class


def model_uri(tracker: Tracker, run_id: str | None) -> tuple[str, tuple[str, ...]]:
    """(model URI, class names): the given run's model, else the latest sweep's best."""
    if run_id:
        run = tracker.get(run_id)
    else:
        sweeps = [r for r in tracker.search(None, SWEEP_FILTER) if "best_model_uri" in r.tags]
        if not sweeps:
            raise HarnessError(f"no finished sweep with a logged model in {tracker.store.shown}")
        run = sweeps[0]
    uri = run.tags.get("model_uri") or run.tags.get("best_model_uri")
    if not uri:
        raise HarnessError(f"run {run.run_id} has no logged model (pass a sweep's run or its best trial's)")
    parent = tracker.get(run.tags["mlflow.parentRunId"]) if "mlflow.parentRunId" in run.tags else run
    return uri, tuple(json.loads(parent.tags.get("classes", "null")) or TUTORIAL_CLASSES)


def load_photo(path: str, image_size: int) -> np.ndarray:
    """Decode and resize exactly as the training data loader does (tf.image, bilinear)."""
    import tensorflow as tf

    if not Path(path).is_file():
        raise HarnessError(f"photo not found: {path}")
    try:
        image = tf.image.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except Exception:
        raise HarnessError(f"cannot read {path} as an image") from None
    return tf.image.resize(image, (image_size, image_size), method="bilinear").numpy()


def predict(photos: list[str], run_id: str | None = None, tracking_uri: str | None = None) -> tuple[str, list[Prediction]]:
    """The most probable class of each photo with a logged winner; returns (model URI, predictions)."""
    if not photos:
        raise HarnessError("give at least one photo")
    store = resolve_store(tracking_uri)
    uri, classes = model_uri(Tracker(store), run_id)
    model = load_keras_model(uri, store)
    size = int(model.input_shape[1])
    batch = np.stack([load_photo(p, size) for p in photos])
    probs = class_probabilities(model.predict(batch, verbose=0))
    return uri, [Prediction(p, classes[int(np.argmax(row))], float(np.max(row))) for p, row in zip(photos, probs)]
