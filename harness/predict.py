"""Using the winner: load a sweep's logged image network and say cat or dog for photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import backbones  # noqa: F401  registers Preprocess, which every logged network holds
from harness.data import CLASSES
from harness.errors import HarnessError
from harness.tracking import Tracker, load_keras_model, resolve_store

SWEEP_FILTER = "tags.sweep = 'true' and attributes.status = 'FINISHED'"


@dataclass(frozen=True)
class Prediction:
    path: str
    prob_dog: float

    @property
    def label(self) -> str:
        return CLASSES[int(self.prob_dog >= 0.5)][:-1]  # 'cat' / 'dog'


def model_uri(tracker: Tracker, run_id: str | None) -> tuple[str, str]:
    """(model URI, run id it came from): the given run's model, else the latest sweep's best."""
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
    return uri, run.run_id


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
    """P(dog) for each photo with a logged winner; returns (model URI, predictions)."""
    if not photos:
        raise HarnessError("give at least one photo")
    store = resolve_store(tracking_uri)
    uri, _ = model_uri(Tracker(store), run_id)
    model = load_keras_model(uri, store)
    size = int(model.input_shape[1])
    batch = np.stack([load_photo(p, size) for p in photos])
    probs = model.predict(batch, verbose=0).reshape(-1)
    return uri, [Prediction(p, float(v)) for p, v in zip(photos, probs)]
