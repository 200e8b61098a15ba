"""Writing runs: created (safely retried over HTTP), params/metrics/tags in batches, stale
RUNNING children ended."""

from __future__ import annotations

import time
import uuid
from typing import Any

from harness.tracking._connection import Tracker
from harness.tracking.reading import PARENT_TAG, children

REQUEST_TAG = "harness.request_id"  # makes creating a run over HTTP safe to retry


def start(tracker: Tracker, experiment_id: str, name: str, tags: dict[str, str],
          parent_id: str | None = None) -> str:
    """A new run's id; over HTTP a retried request finds the run it already created."""
    tags = {k: str(v) for k, v in tags.items()}
    if parent_id:
        tags[PARENT_TAG] = parent_id
    if not tracker.remote:
        return tracker.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    # A server killed after creating the run but before answering must not leave a second,
    # forever RUNNING copy when the request is sent again: the retry looks for this token.
    tags[REQUEST_TAG] = uuid.uuid4().hex
    sent = []

    def create():
        if sent:
            found = tracker.raw.search_runs([experiment_id], f"tags.`{REQUEST_TAG}` = '{tags[REQUEST_TAG]}'")
            if found:
                return found[0]
        sent.append(True)
        return tracker.raw.create_run(experiment_id, run_name=name, tags=tags)

    return tracker.patience.call(create).info.run_id


def log_params(tracker: Tracker, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    tracker.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_metrics(tracker: Tracker, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    tracker.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])


def set_tags(tracker: Tracker, run_id: str, tags: dict[str, Any]) -> None:
    from mlflow.entities import RunTag

    tracker.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def end_running_children(tracker: Tracker, experiment_id: str, parent_id: str, status: str,
                         trial_id: str | None = None) -> list[str]:
    """End the children of `parent_id` still RUNNING (a killed process's trial; only
    `trial_id`'s when given); returns their ids."""
    stale = [c.run_id for c in children(tracker, parent_id, experiment_id) if c.status == "RUNNING"
             and (trial_id is None or c.tags.get("trial_id") == trial_id)]
    for run_id in stale:
        tracker.client.set_terminated(run_id, status)
    return stale
