"""Reading runs back (compare, predict, resume, workers): searched, fetched, their artifacts read;
no MLflow types leave this module."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, StoreError
from harness.tracking._connection import Tracker
from harness.tracking._errors import first_line

PARENT_TAG = "mlflow.parentRunId"


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


def find_runs(tracker: Tracker, experiment_id: str, tags: dict[str, str]) -> list[RunView]:
    """Runs whose tags match, newest first."""
    where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = tracker.client.search_runs([experiment_id], filter_string=where, max_results=5000,
                                      order_by=["attributes.start_time DESC"])
    return [_view(r) for r in runs]


def children(tracker: Tracker, parent_id: str, experiment_id: str | None = None) -> list[RunView]:
    """Every child run of `parent_id`, as the store has them now."""
    experiment_id = experiment_id or tracker.client.get_run(parent_id).info.experiment_id
    return find_runs(tracker, experiment_id, {PARENT_TAG: parent_id})


def find_distributed_sweeps(tracker: Tracker, experiment: str, oracle_port: int) -> list[str]:
    """RUNNING parent runs of distributed sweeps whose chief serves on `oracle_port`."""
    found = tracker.client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = tracker.client.search_runs(
        [found.experiment_id], max_results=10,
        filter_string=f"tags.distributed = 'true' and tags.oracle_port = '{oracle_port}' "
                      "and attributes.status = 'RUNNING'")
    return [r.info.run_id for r in runs]


def load_json(tracker: Tracker, run_id: str, name: str) -> dict:
    try:
        return json.loads(read_text(tracker, run_id, name))
    except ValueError as exc:
        raise HarnessError(f"run {run_id}: cannot read {name} ({first_line(exc)})") from None


def search(tracker: Tracker, experiment_ids: list[str] | None, filter_string: str = "") -> list[RunView]:
    """Runs matching an MLflow filter, newest first; all experiments when ids is None."""
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in tracker.client.search_experiments()]
    runs = tracker.client.search_runs(experiment_ids, filter_string, order_by=["attributes.start_time DESC"],
                                      max_results=5000)
    return [_view(r) for r in runs]


def get(tracker: Tracker, run_id: str) -> RunView:
    try:
        return _view(tracker.client.get_run(run_id))
    except StoreError as exc:
        if exc.kind not in ("not_found", "other"):
            raise
        raise HarnessError(f"run {run_id} not found in {tracker.store.shown}") from None


def metric_history(tracker: Tracker, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in tracker.client.get_metric_history(run_id, key)]


def read_text(tracker: Tracker, run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = tracker.client.download_artifacts(run_id, path, tmp)
        except StoreError as exc:
            if exc.kind not in ("not_found", "other"):
                raise
            raise HarnessError(f"run {run_id} has no artifact {path} in {tracker.store.shown}") from None
        return Path(local).read_text()

