"""PostgreSQL as the tracking server's database, for real (-m slow): a chief and two workers
sweep 6 trials through `harness server --backend-store-uri postgresql://...`, then `harness
compare` reads them back. Skips when no PostgreSQL answers at HARNESS_TEST_POSTGRES (.ci/run
installs and starts one)."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest

from conftest import free_port, runs_of, tiny_sweep_args, wait_healthy

pytestmark = pytest.mark.slow
ADMIN_URI = os.environ.get("HARNESS_TEST_POSTGRES", "postgresql://harness:harness@127.0.0.1:5432/postgres")


@pytest.fixture
def database():
    """A fresh database on the PostgreSQL server (dropped afterwards), as a SQLAlchemy URI."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_URI, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_URI}: {str(exc).splitlines()[0]}")
    name = f"harness_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield ADMIN_URI.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_chief_two_workers_and_compare_on_a_postgresql_server(tiny_data, tmp_path, started, database):
    import psycopg
    from mlflow import MlflowClient

    port, oracle = free_port(), f"127.0.0.1:{free_port()}"
    uri = f"http://127.0.0.1:{port}"
    server = started("server", ["server", "--port", str(port), "--backend-store-uri", database,
                                "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "2"])
    wait_healthy(uri, server)
    fe = tiny_sweep_args("feature-extraction", tiny_data, uri, "--max-trials", "6")
    workers = [started(f"worker{i}", [*fe, "--role", "worker", "--oracle", oracle]) for i in range(2)]
    chief = started("chief", [*fe, "--role", "chief", "--oracle", oracle])
    for proc in (chief, *workers):
        assert proc.wait(900) == 0, started.log(proc)
    ft = started("fine-tune", tiny_sweep_args("fine-tune", tiny_data, uri, "--max-trials", "2", "--epochs", "1"))
    assert ft.wait(900) == 0, started.log(ft)
    compare = started("compare", ["compare", "--tracking-uri", uri])
    assert compare.wait(600) == 0, started.log(compare)

    client = MlflowClient(tracking_uri=uri)
    parents, children = runs_of(client, "tiny")
    sweep = next(p for p in parents if p.data.tags.get("distributed") == "true")
    mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == sweep.info.run_id]
    finished = Counter(c.data.tags["trial_id"] for c in mine if c.info.status == "FINISHED")
    assert finished == Counter({str(i): 1 for i in range(6)})  # each trial id FINISHED exactly once
    assert {c.data.tags["tuner_id"] for c in mine} <= {f"worker-{os.uname().nodename}-{w.pid}" for w in workers}
    assert not [r for r in parents + children if r.info.status == "RUNNING"]
    comparison = next(p for p in parents if p.data.tags.get("kind") == "comparison")
    assert comparison.info.status == "FINISHED" and "mcnemar_p" in comparison.data.metrics
    assert comparison.data.tags["feature_extraction_run"] == sweep.info.run_id

    with psycopg.connect(database) as db:  # what PostgreSQL itself holds
        stored = dict(db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    assert stored["FINISHED"] == sum(r.info.status == "FINISHED" for r in parents + children)
