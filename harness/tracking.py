"""MLflow: the only module that imports it. Resolves the store, writes runs, reads them back."""

from __future__ import annotations

import logging
import sys
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from harness.errors import HarnessError

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
PARENT_TAG = "mlflow.parentRunId"


@dataclass(frozen=True)
class Store:
    uri: str
    artifact_root: str | None  # None: the server decides (http stores)

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
    """Thin, explicit wrapper over MlflowClient: runs are addressed by id, never 'active'."""

    def __init__(self, store: Store):
        from mlflow import MlflowClient

        # MLflow sets its logger up on import; quieten its database-migration chatter after that.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.store = store
        self._queued: dict[str, list] = {}  # run id -> MLflow's pending asynchronous log operations
        _probe_server(store.uri)
        self.client = MlflowClient(tracking_uri=store.uri)
        try:
            self.client.search_experiments(max_results=1)
        except Exception as exc:
            raise HarnessError(f"cannot reach tracking store {store.uri}: {_first_line(exc)}") from None

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=self.store.artifact_root)
        except Exception:  # created meanwhile by a concurrent sweep
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def start_run(self, experiment_id: str, name: str, tags: dict[str, str],
                  parent_id: str | None = None) -> str:
        tags = {k: str(v) for k, v in tags.items()}
        if parent_id:
            tags[PARENT_TAG] = parent_id
        return self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0, wait: bool = True) -> None:
        """One batch of metrics at `step`. `wait=False` queues it on MLflow's asynchronous logging
        (a trial's per-epoch curves: the training thread never waits on the store's commit);
        end_run waits for everything queued for its run."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if wait:
            self.client.log_batch(run_id, metrics=batch)
            return
        # Queued batches are written together once a second; MLflow's default (0) instead holds
        # up the end of every run by up to a second.
        os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "1")
        self._queued.setdefault(run_id, []).append(self.client.log_batch(run_id, metrics=batch, synchronous=False))

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
        """End a run once everything queued for it has been written: MLflow's set_terminated first
        drains its asynchronous queue (at once; waiting on the queued batches instead would sit out
        the queue's one-second cycle). An error writing them is raised after the run has ended,
        so nothing is left RUNNING."""
        queued = self._queued.pop(run_id, [])
        self.client.set_terminated(run_id, status=status)
        for operation in queued:
            operation.wait()

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

    def find_experiment(self, name: str) -> str | None:
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else None

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
        try:
            return _load_json_artifact(self.client, run_id, name)
        except Exception as exc:
            raise HarnessError(f"run {run_id}: cannot read {name} ({_first_line(exc)})") from None

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
        except Exception:
            raise HarnessError(f"run {run_id} not found in {self.store.uri}") from None

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def read_text(self, run_id: str, path: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self.client.download_artifacts(run_id, path, tmp)
            except Exception:
                raise HarnessError(f"run {run_id} has no artifact {path}") from None
            return Path(local).read_text()

    def log_keras_model(self, run_id: str, model, example, prediction) -> str:
        """Log a Keras 3 model (MLflow's keras flavor) with a signature on `run_id`; returns its URI."""
        import mlflow
        from mlflow.models import Model, infer_signature

        # Model.log takes an explicit run id; it places the logged model in the active
        # experiment, so point that at the run's experiment first.
        mlflow.set_tracking_uri(self.store.uri)
        mlflow.set_experiment(experiment_id=self.client.get_run(run_id).info.experiment_id)
        info = Model.log(artifact_path=None, name="model", flavor=mlflow.keras, model=model, run_id=run_id,
                         signature=infer_signature(example, prediction),
                         # explicit requirements: MLflow would otherwise load the model in a
                         # subprocess to infer them, which costs as much as a short trial
                         pip_requirements=mlflow.keras.get_default_pip_requirements())
        return info.model_uri


def _probe_server(uri: str, timeout: float = 5.0) -> None:
    """An unreachable server fails in seconds here, not after MLflow's minutes of HTTP retries."""
    import socket

    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HarnessError(f"cannot reach tracking server {uri} ({reason})") from None


def _load_json_artifact(client, run_id: str, name: str) -> dict:
    import json

    return json.loads(Path(client.download_artifacts(run_id, name)).read_text())


def load_keras_model(uri: str, store: Store):
    """A model logged with log_keras_model, as a Keras model."""
    import mlflow

    mlflow.set_tracking_uri(store.uri)
    try:
        with warnings.catch_warnings():  # the trained head's optimizer state is not needed to predict
            warnings.simplefilter("ignore")
            return mlflow.keras.load_model(uri)
    except Exception as exc:
        raise HarnessError(f"cannot load model {uri}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def server_command(backend_store_uri: str, host: str, port: int, artifacts_destination: str | None = None,
                   default_artifact_root: str | None = None, workers: int | None = None) -> list[str]:
    """`mlflow server` on `host:port`; with an artifacts destination it proxies artifact uploads,
    so clients on other machines need no access to the server's disk."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
           "--host", host, "--port", str(port)]
    if artifacts_destination:
        cmd += ["--serve-artifacts", "--artifacts-destination", artifacts_destination]
    if default_artifact_root:
        cmd += ["--default-artifact-root", default_artifact_root]
    if workers:
        cmd += ["--workers", str(workers)]
    return cmd


def serve(cmd: list[str]) -> int:
    """Run an MLflow server command in the foreground until interrupted; returns its exit code."""
    import subprocess

    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def serve_ui(store: Store, port: int) -> int:
    """Run MLflow's own server (the UI) on loopback until interrupted; returns its exit code."""
    return serve(server_command(store.uri, "127.0.0.1", port, default_artifact_root=store.artifact_root,
                                workers=1))  # one person, one worker: starts in seconds, not a minute


def server_for(store: Store, host: str, port: int, artifacts_destination: str | None) -> list[str]:
    """`harness server`: a tracking server for `store`; artifacts beside a local sqlite store."""
    if artifacts_destination is None and store.local_dir is not None:
        artifacts_destination = str(store.local_dir / "artifacts")
    return server_command(store.uri, host, port, artifacts_destination=artifacts_destination)


def start_background_server(store: Store, port: int, log_path: Path):
    """A private loopback server over a local store, so concurrent workers never write to one
    sqlite file at once. Artifacts keep the store's own location. Returns (process, uri)."""
    import subprocess
    import urllib.request

    cmd = server_command(store.uri, "127.0.0.1", port, default_artifact_root=store.artifact_root, workers=1)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"the MLflow server for {store.uri} exited; see {log_path}")
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).read()
            return proc, uri
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise HarnessError(f"the MLflow server for {store.uri} did not start in 120s; see {log_path}")
