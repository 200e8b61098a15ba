"""Export a logged winner for other runtimes: a TensorFlow SavedModel, or a TFLite flat buffer for phones."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.tracking import models

FORMATS = ("saved_model", "tflite")
ARTIFACT_FOLDER = "export"


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    size_bytes: int
    model_uri: str
    logged_to: str | None  # runs:/<run id>/export/<name> with --log


def is_model_uri(source: str) -> bool:
    """models:/..., runs:/..., or any other scheme; a bare run id otherwise."""
    return ":/" in source


def export(source: str, fmt: str, out: Path, log: bool = False, tracking_uri: str | None = None) -> Exported:
    """Write the winner of `source` (a sweep's or trial's run id, or any MLflow model URI) to `out`
    in `fmt`; with `log`, also log it as an artifact of the run that logged the model."""
    from harness.serving._predict import load_winner
    from harness.tracking import Tracker, resolve_store

    if fmt not in FORMATS:
        raise HarnessError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    out = Path(out)
    if out.exists():
        raise HarnessError(f"{out} already exists; remove it or choose another --out")
    uri = source if is_model_uri(source) else None
    loaded = load_winner(None if uri else source, uri, tracking_uri)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        (save_saved_model if fmt == "saved_model" else save_tflite)(loaded.model, out)
    except BaseException as exc:
        _remove(out)  # no half-written export left behind
        if isinstance(exc, OSError):
            raise HarnessError(f"cannot write {out}: {exc.strerror or exc}") from None
        raise
    logged = None
    if log:
        if not loaded.run_id:
            raise HarnessError(f"model {loaded.uri} names no run to log the export to")
        models.log_path(Tracker(resolve_store(tracking_uri)), loaded.run_id, out, ARTIFACT_FOLDER)
        logged = f"runs:/{loaded.run_id}/{ARTIFACT_FOLDER}/{out.name}"
    return Exported(out, fmt, _size(out), loaded.uri, logged)


def save_saved_model(model, out: Path) -> None:
    """A TensorFlow SavedModel whose `serving_default` signature maps `images`, float32 RGB pixels
    0..255 (N, S, S, 3), to `probabilities` (N, classes).

    tf.saved_model.save on a tf.Module rather than Keras' model.export: Keras 3.15's export
    writes every variable twice (a 59 MB VGG16 became 118 MB). The module holds the model's
    TensorFlow variables themselves, not their Keras wrappers: the TFLite converter reads only
    those (with the Keras model attached instead, it wrote a flat buffer without weights).
    """
    import tensorflow as tf

    size = int(model.input_shape[1])
    module = tf.Module()
    module.weights = [v.value for v in model.variables]
    module.serve = tf.function(lambda images: {"probabilities": model(images, training=False)},
                               input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})


def save_tflite(model, out: Path) -> None:
    """A float32 TFLite flat buffer (no quantization): the same numbers as the Keras model."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved_model"
        save_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        flat = converter.convert()
    out.write_bytes(flat)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
