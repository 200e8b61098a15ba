"""MLflow: the only module that imports it. Resolves the store, writes runs, reads them back."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from harness.errors import HarnessError, StoreError
from harness.tracking._errors import (Guarded, Patience, check_experiment_name, check_registered_model_name, check_sqlite,
                                  classify, first_line, probe_database, probe_server, server_wait, shown)

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
PARENT_TAG = "mlflow.parentRunId"
REQUEST_TAG = "harness.request_id"  # makes creating a run over HTTP safe to retry
# Over HTTP, the Tracker's own Patience waits out a server restart; MLflow's minutes of
# retries per request would only hide it.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
# MLflow 3's own tag for what an experiment is for; the UI's experiment-kind selector reads it.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


@dataclass(frozen=True)
class Store:
    uri: str
    artifact_root: str | None  # None: the server decides (http stores)

    @property
    def shown(self) -> str:
        """The URI as it may be printed (a password in it masked)."""
        return shown(self.uri)

    @property
    def local_dir(self) -> Path | None:
        """The folder holding a local sqlite store (database + artifacts), else None."""
        path = sqlite_path(self.uri)
        return path.parent if path else None


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def resolve_store(tracking_uri: str | None) -> Store:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the project's sqlite store.

    For a local sqlite URI the artifacts live beside the database, so one folder is one store.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    db = sqlite_path(uri)
    if db is None:
        scheme = urlparse(uri).scheme
        if scheme not in ("http", "https", "postgresql", "mysql", "databricks", "file", ""):
            raise HarnessError(f"unsupported tracking URI {uri!r}")
        return Store(uri, None)
    db = db.resolve()
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        probe = db.parent / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"tracking store {db.parent} is not writable ({exc.strerror})") from None
    return Store(f"sqlite:///{db}", (db.parent / "artifacts").as_uri())


@dataclass(frozen=True)
class RunView:
    """A run as the rest of the harness reads it back (no MLflow types outside this module)."""

    run_id: str
    experiment_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def seconds(self) -> float:
        return ((self.end_time or self.start_time) - self.start_time) / 1000.0


def _view(run) -> RunView:
    info, data = run.info, run.data
    return RunView(info.run_id, info.experiment_id, info.run_name, info.status, info.start_time,
                   info.end_time, dict(data.tags), dict(data.params), dict(data.metrics))


class Tracker:
    """Thin, explicit wrapper over MlflowClient: runs are addressed by id, never 'active'.

    Every call goes through a Patience: a failure is one StoreError line, and once the store
    has answered, a server that goes away is waited for (`on_wait` hears about it)."""

    def __init__(self, store: Store, on_wait: Callable[[str], None] | None = None):
        from mlflow import MlflowClient

        # MLflow sets its logger up on import; quieten its database-migration chatter after that.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.store = store
        self.remote = urlparse(store.uri).scheme in ("http", "https")
        if self.remote:
            for key, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(key, value)
            probe_server(store.uri)
        elif urlparse(store.uri).scheme.startswith(("postgresql", "mysql", "mssql")):
            probe_database(store.uri)
        check_sqlite(store.uri, sqlite_path(store.uri))
        self.patience = Patience(store.uri, server_wait(), on_wait)
        self.raw = self.patience.call(MlflowClient, tracking_uri=store.uri)  # opens (and checks) a database
        self.client = Guarded(self.raw, self.patience)
        self.client.search_experiments(max_results=1)  # unreachable, locked out: one line now

    def find_experiment(self, name: str) -> str | None:
        """The experiment's id (None if there is none). Checked first: a name MLflow takes, and
        not one that a deleted experiment still holds."""
        check_experiment_name(name)
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return None
        if found.lifecycle_stage == "deleted":
            raise StoreError(
                f"experiment {name!r} (id {found.experiment_id}) in {self.store.shown} was deleted (in the MLflow "
                "UI?) and holds its name until `mlflow gc` purges it: restore it with `MLFLOW_TRACKING_URI="
                f"{self.store.shown} mlflow experiments restore --experiment-id {found.experiment_id}`, or "
                "pick another name with --experiment NAME", "deleted")
        return found.experiment_id

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created if it does not exist yet."""
        found = self.find_experiment(name)
        if found is not None:
            return found
        try:
            return self.client.create_experiment(name, artifact_location=self.store.artifact_root,
                                                 tags=EXPERIMENT_KIND)
        except StoreError:  # created meanwhile by a concurrent sweep
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def start_run(self, experiment_id: str, name: str, tags: dict[str, str],
                  parent_id: str | None = None) -> str:
        tags = {k: str(v) for k, v in tags.items()}
        if parent_id:
            tags[PARENT_TAG] = parent_id
        if not self.remote:
            return self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        # A server killed after creating the run but before answering must not leave a second,
        # forever RUNNING copy when the request is sent again: the retry looks for this token.
        tags[REQUEST_TAG] = uuid.uuid4().hex
        sent = []

        def create():
            if sent:
                found = self.raw.search_runs([experiment_id], f"tags.`{REQUEST_TAG}` = '{tags[REQUEST_TAG]}'")
                if found:
                    return found[0]
            sent.append(True)
            return self.raw.create_run(experiment_id, run_name=name, tags=tags)

        return self.patience.call(create).info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_file(self, run_id: str, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path=folder)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_dict(self, run_id: str, value: dict, name: str) -> None:
        self.client.log_dict(run_id, value, name)

    def log_figure(self, run_id: str, figure, name: str) -> None:
        self.client.log_figure(run_id, figure, name)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def run_status(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.status

    def run_name(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.run_name

    def reopen_run(self, run_id: str) -> None:
        """A resumed sweep's parent is RUNNING again until it ends."""
        self.client.update_run(run_id, status="RUNNING")

    def find_runs(self, experiment_id: str, tags: dict[str, str]) -> list[RunView]:
        """Runs whose tags match, newest first."""
        where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([experiment_id], filter_string=where, max_results=5000,
                                       order_by=["attributes.start_time DESC"])
        return [_view(r) for r in runs]

    def children(self, parent_id: str, experiment_id: str | None = None) -> list[RunView]:
        """Every child run of `parent_id`, as the store has them now."""
        return self.find_runs(experiment_id or self.run_experiment(parent_id), {PARENT_TAG: parent_id})

    def end_running_children(self, experiment_id: str, parent_id: str, status: str,
                             trial_id: str | None = None) -> list[str]:
        """End the children of `parent_id` still RUNNING (a killed process's trial; only
        `trial_id`'s when given); returns their ids."""
        stale = [c.run_id for c in self.children(parent_id, experiment_id) if c.status == "RUNNING"
                 and (trial_id is None or c.tags.get("trial_id") == trial_id)]
        for run_id in stale:
            self.end_run(run_id, status)
        return stale

    def set_experiment_tags(self, experiment_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_experiment_tag(experiment_id, key, value)

    # -- distributed sweeps: workers find the chief's parent run and read it back ----------
    def find_distributed_sweeps(self, experiment: str, oracle_port: int) -> list[str]:
        """RUNNING parent runs of distributed sweeps whose chief serves on `oracle_port`."""
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return []
        runs = self.client.search_runs(
            [found.experiment_id], max_results=10,
            filter_string=f"tags.distributed = 'true' and tags.oracle_port = '{oracle_port}' "
                          "and attributes.status = 'RUNNING'")
        return [r.info.run_id for r in runs]

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def run_experiment(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.experiment_id

    def load_json(self, run_id: str, name: str) -> dict:
        import json

        try:
            return json.loads(self.read_text(run_id, name))
        except ValueError as exc:
            raise HarnessError(f"run {run_id}: cannot read {name} ({first_line(exc)})") from None

    # -- reading back ------------------------------------------------------------
    def experiment_name(self, experiment_id: str) -> str:
        return self.client.get_experiment(experiment_id).name

    def search(self, experiment_ids: list[str] | None, filter_string: str = "") -> list[RunView]:
        """Runs matching an MLflow filter, newest first; all experiments when ids is None."""
        if experiment_ids is None:
            experiment_ids = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(experiment_ids, filter_string, order_by=["attributes.start_time DESC"],
                                       max_results=5000)
        return [_view(r) for r in runs]

    def get(self, run_id: str) -> RunView:
        try:
            return _view(self.client.get_run(run_id))
        except StoreError as exc:
            if exc.kind not in ("not_found", "other"):
                raise
            raise HarnessError(f"run {run_id} not found in {self.store.shown}") from None

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def read_text(self, run_id: str, path: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self.client.download_artifacts(run_id, path, tmp)
            except StoreError as exc:
                if exc.kind not in ("not_found", "other"):
                    raise
                raise HarnessError(f"run {run_id} has no artifact {path} in {self.store.shown}") from None
            return Path(local).read_text()

    def log_keras_model(self, run_id: str, model, example, prediction, metadata: dict | None = None) -> str:
        """Log a Keras 3 model (MLflow's keras flavor) with a signature and `metadata` (kept in its
        MLmodel file) on `run_id`; returns its URI."""
        import mlflow
        from mlflow.models import Model, infer_signature

        def log():
            # Model.log takes an explicit run id; it places the logged model in the active
            # experiment, so point that at the run's experiment first.
            mlflow.set_tracking_uri(self.store.uri)
            mlflow.set_experiment(experiment_id=self.raw.get_run(run_id).info.experiment_id)
            return Model.log(artifact_path=None, name="model", flavor=mlflow.keras, model=model, run_id=run_id,
                             signature=infer_signature(example, prediction), metadata=metadata,
                             # explicit requirements: MLflow would otherwise load the model in a
                             # subprocess to infer them, which costs as much as a short trial
                             pip_requirements=mlflow.keras.get_default_pip_requirements())

        return self.patience.call(log).model_uri

    def register_model(self, uri: str, name: str, tags: dict[str, str]) -> str:
        """A new version of registered model `name` (created if new) from a logged model; returns
        the version number."""
        import mlflow

        check_registered_model_name(name)

        def register() -> str:
            mlflow.set_tracking_uri(self.store.uri)
            mlflow.set_registry_uri(self.store.uri)
            with contextlib.redirect_stderr(io.StringIO()):  # its own "Successfully registered" lines
                return str(mlflow.register_model(uri, name, tags=tags).version)

        return self.patience.call(register)

    def log_path(self, run_id: str, path: Path, folder: str) -> None:
        """A file or a whole folder as artifacts of `run_id` under `folder`."""
        if Path(path).is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path=f"{folder}/{Path(path).name}")
        else:
            self.client.log_artifact(run_id, str(path), artifact_path=folder)


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
