"""MLflow, and only here: the store, writing runs, reading them back, logged models, store errors,
the UI's saved views and the software and machine a run records (imports: harness.errors)."""

from harness.tracking._connection import Tracker
from harness.tracking._store import DEFAULT_URI, Store, resolve_store, sqlite_path
from harness.tracking.models import LoadedModel, load_keras_model
from harness.tracking.reading import PARENT_TAG, RunView

__all__ = ["DEFAULT_URI", "PARENT_TAG", "LoadedModel", "RunView", "Store", "Tracker", "load_keras_model",
           "resolve_store", "sqlite_path"]
