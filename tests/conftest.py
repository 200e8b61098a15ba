"""Shared fixtures: tiny synthetic photos, an isolated MLflow store and feature cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data" / "cats_and_dogs_small"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_0.35_imagenet_no_top.weights.h5"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """6 images per class and split, 40x40 JPEGs: enough to exercise every code path."""
    from harness.data import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("data") / "tiny", per_class=6, size=40)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own feature cache and never touches the project's ./mlruns."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


@pytest.fixture
def client(store_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store_uri)


TINY_FLAGS = ["--backbone", "vgg16", "--weights", "none", "--image-size", "32", "--epochs", "2",
              "--max-trials", "3", "--seed", "3"]


def tiny_sweep_args(method: str, data: Path, store_uri: str, *extra: str) -> list[str]:
    """A tiny sweep with the packaged default sweep file (no --config), flags overriding it."""
    return ["sweep", method, "--data", str(data), "--tracking-uri", store_uri, *TINY_FLAGS, *extra]


def runs_of(client, experiment: str):
    """All runs of an experiment as MLflow itself reports them: (parents, children)."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children
