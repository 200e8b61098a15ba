"""Experiments: found by name (refusing names MLflow refuses and names a deleted experiment
holds), created on first use, tagged."""

from __future__ import annotations

from harness.errors import StoreError
from harness.tracking._connection import Tracker
from harness.tracking._errors import check_experiment_name

# MLflow 3's own tag for what an experiment is for; the UI's experiment-kind selector reads it.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def find(tracker: Tracker, name: str) -> str | None:
    """The experiment's id (None if there is none). Checked first: a name MLflow takes, and
    not one that a deleted experiment still holds."""
    check_experiment_name(name)
    found = tracker.client.get_experiment_by_name(name)
    if found is None:
        return None
    if found.lifecycle_stage == "deleted":
        raise StoreError(
            f"experiment {name!r} (id {found.experiment_id}) in {tracker.store.shown} was deleted (in the MLflow "
            "UI?) and holds its name until `mlflow gc` purges it: restore it with `MLFLOW_TRACKING_URI="
            f"{tracker.store.shown} mlflow experiments restore --experiment-id {found.experiment_id}`, or "
            "pick another name with --experiment NAME", "deleted")
    return found.experiment_id


def ensure(tracker: Tracker, name: str) -> str:
    """The experiment's id, created if it does not exist yet."""
    found = find(tracker, name)
    if found is not None:
        return found
    try:
        return tracker.client.create_experiment(name, artifact_location=tracker.store.artifact_root,
                                                tags=EXPERIMENT_KIND)
    except StoreError:  # created meanwhile by a concurrent sweep
        found = tracker.client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def set_tags(tracker: Tracker, experiment_id: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        tracker.client.set_experiment_tag(experiment_id, key, value)
