"""Logged models: a Keras network logged with its signature and metadata, registered, loaded back
from any MLflow model URI; files and folders logged beside them."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.tracking._connection import Tracker
from harness.tracking._errors import check_registered_model_name, classify, first_line
from harness.tracking._store import Store


def log_keras_model(tracker: Tracker, run_id: str, model, example, prediction,
                    metadata: dict | None = None) -> str:
    """Log a Keras 3 model (MLflow's keras flavor) with a signature and `metadata` (kept in its
    MLmodel file) on `run_id`; returns its URI."""
    import mlflow
    from mlflow.models import Model, infer_signature

    def log():
        # Model.log takes an explicit run id; it places the logged model in the active
        # experiment, so point that at the run's experiment first.
        mlflow.set_tracking_uri(tracker.store.uri)
        mlflow.set_experiment(experiment_id=tracker.raw.get_run(run_id).info.experiment_id)
        return Model.log(artifact_path=None, name="model", flavor=mlflow.keras, model=model, run_id=run_id,
                         signature=infer_signature(example, prediction), metadata=metadata,
                         # explicit requirements: MLflow would otherwise load the model in a
                         # subprocess to infer them, which costs as much as a short trial
                         pip_requirements=mlflow.keras.get_default_pip_requirements())

    return tracker.patience.call(log).model_uri


def register(tracker: Tracker, uri: str, name: str, tags: dict[str, str]) -> str:
    """A new version of registered model `name` (created if new) from a logged model; returns
    the version number."""
    import mlflow

    check_registered_model_name(name)

    def send() -> str:
        mlflow.set_tracking_uri(tracker.store.uri)
        mlflow.set_registry_uri(tracker.store.uri)
        with contextlib.redirect_stderr(io.StringIO()):  # its own "Successfully registered" lines
            return str(mlflow.register_model(uri, name, tags=tags).version)

    return tracker.patience.call(send)


def log_path(tracker: Tracker, run_id: str, path: Path, folder: str) -> None:
    """A file or a whole folder as artifacts of `run_id` under `folder`."""
    if Path(path).is_dir():
        tracker.client.log_artifacts(run_id, str(path), artifact_path=f"{folder}/{Path(path).name}")
    else:
        tracker.client.log_artifact(run_id, str(path), artifact_path=folder)


@dataclass(frozen=True)


class LoadedModel:
    """A logged Keras model with what its MLmodel file says about it."""

    uri: str
    model: Any  # keras.Model
    metadata: dict[str, Any]
    run_id: str | None  # the run that logged it


def load_keras_model(uri: str, store: Store) -> LoadedModel:
    """Any MLflow model URI (models:/NAME/1, models:/NAME@alias, models:/m-..., runs:/...) of a
    Keras model, with its metadata."""
    import mlflow

    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    try:
        info = mlflow.models.get_model_info(uri)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mlflow.keras.load_model(uri)
    except Exception as exc:
        error = classify(exc, store.uri)
        if error.kind in ("unavailable", "unauthenticated", "forbidden", "host"):
            raise error from None
        raise HarnessError(f"cannot load model {uri}: {first_line(exc)}") from None
    return LoadedModel(uri, model, dict(info.metadata or {}), info.run_id)
