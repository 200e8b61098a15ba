"""Using the winner: load a logged image network and name the class of each photo."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data._folders import IMAGE_SUFFIXES
from harness.errors import HarnessError
from harness.training._heads import class_probabilities
from harness.tracking import LoadedModel, Tracker, load_keras_model, resolve_store
from harness.tracking import reading

SWEEP_FILTER = "tags.sweep = 'true' and attributes.status = 'FINISHED'"
BATCH = 32  # photos decoded and predicted at a time, so a large folder needs little memory


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str  # the most probable class
    probability: float  # of that class
    probabilities: tuple[float, ...]  # of every class, in the model's class order


@dataclass(frozen=True)
class Predictions:
    uri: str
    class_names: tuple[str, ...]
    rows: list[Prediction]


def model_uri(tracker: Tracker, run_id: str | None) -> str:
    """The model URI of the given sweep's or trial's run, else of the latest finished sweep's best."""
    if run_id:
        run = reading.get(tracker, run_id)
    else:
        sweeps = [r for r in reading.search(tracker, None, SWEEP_FILTER) if "best_model_uri" in r.tags]
        if not sweeps:
            raise HarnessError(f"no finished sweep with a logged model in {tracker.store.shown}")
        run = sweeps[0]
    uri = run.tags.get("model_uri") or run.tags.get("best_model_uri")
    if not uri:
        raise HarnessError(f"run {run.run_id} has no logged model (pass a sweep's run or its best trial's)")
    return uri


def load_winner(run_id: str | None = None, uri: str | None = None, tracking_uri: str | None = None) -> LoadedModel:
    """A logged winner by run id (`--run`), by any MLflow model URI (`--model`), else the latest sweep's."""
    if run_id and uri:
        raise HarnessError("give --run or --model, not both")
    store = resolve_store(tracking_uri)
    tracker = Tracker(store)
    return load_keras_model(uri or model_uri(tracker, run_id), store)


def class_names(loaded: LoadedModel) -> tuple[str, ...]:
    """The class names the model's MLflow metadata carries (column i of its output is class i)."""
    names = loaded.metadata.get("class_names")
    if not names:
        raise HarnessError(f"model {loaded.uri} has no class_names in its MLflow metadata "
                           "(logged by an older harness? run its sweep again)")
    return tuple(names)


def photo_files(paths: list[str]) -> list[str]:
    """Files as given; a folder becomes every image under it (recursively, image extensions only,
    hidden files and folders skipped, sorted)."""
    if not paths:
        raise HarnessError("give at least one photo or folder")
    files = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            files.append(given)
            continue
        found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            raise HarnessError(f"no images under {given} ({' '.join(IMAGE_SUFFIXES)})")
        files += found
    return files


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


def predict(photos: list[str], run_id: str | None = None, tracking_uri: str | None = None,
            uri: str | None = None, out: Path | None = None) -> Predictions:
    """The most probable class of each photo (folders expanded) with a logged winner; with `out`,
    every class's probability is also written there as CSV."""
    files = photo_files(photos)
    for path in files:
        if not Path(path).is_file():
            raise HarnessError(f"photo not found: {path}")
    loaded = load_winner(run_id, uri, tracking_uri)
    names = class_names(loaded)
    size = int(loaded.metadata.get("image_size") or loaded.model.input_shape[1])
    rows = []
    for start in range(0, len(files), BATCH):
        chunk = files[start:start + BATCH]
        batch = np.stack([load_photo(p, size) for p in chunk])
        for path, row in zip(chunk, class_probabilities(loaded.model.predict(batch, verbose=0))):
            best = int(np.argmax(row))
            rows.append(Prediction(path, names[best], float(row[best]), tuple(float(v) for v in row)))
    result = Predictions(loaded.uri, names, rows)
    if out is not None:
        write_csv(result, out)
    return result


def write_csv(result: Predictions, out: Path) -> None:
    """One row per photo: path, then p(<class>) for every class."""
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", *(f"p({c})" for c in result.class_names)])
            for p in result.rows:
                writer.writerow([p.path, *(f"{v:.6f}" for v in p.probabilities)])
    except OSError as exc:
        raise HarnessError(f"cannot write {out}: {exc.strerror}") from None
