"""Where the runs live: --tracking-uri, else MLFLOW_TRACKING_URI, else the project's SQLite file."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from harness.errors import HarnessError
from harness.tracking._errors import classify, shown

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"


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
    store = Store(f"sqlite:///{db}", (db.parent / "artifacts").as_uri())
    _create_once(store, db)
    return store


def _create_once(store: Store, db: Path) -> None:
    """A new database's tables made by one process, the others waiting beside it.

    MLflow creates and migrates a sqlite store's tables on first open, with no lock: two sweeps
    starting at once into a new store both ran the migrations ('table experiments already
    exists', 'duplicate column name'). Under an exclusive lock on mlflow.db.lock the first
    process makes the tables; the next one finds them made. An existing store is left to MLflow
    (and to the check that it is MLflow's at all): only an absent or table-less file is made here.
    """
    lock = db.with_name(f"{db.name}.lock")
    try:
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # let go when the file closes, or the process dies
            if not _has_tables(db):
                _make_tables(store)
    except OSError as exc:
        raise HarnessError(f"tracking store {db.parent} could not be created ({exc.strerror or exc})") from None
    except Exception as exc:  # MLflow's or the database's: one line, as the Tracker reports them
        raise classify(exc, store.uri) from None


def _has_tables(db: Path) -> bool:
    if not db.is_file() or db.stat().st_size == 0:
        return False
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as con:
            return con.execute("select 1 from sqlite_master where type = 'table' limit 1").fetchone() is not None
    except sqlite3.DatabaseError:  # not a database at all: the Tracker's check says so, in one line
        return True


def _make_tables(store: Store) -> None:
    """MLflow's own store creation (tables, then every migration), quiet as the Tracker keeps it."""
    import logging

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for name in ("mlflow", "alembic"):  # its migration chatter, one INFO line per step
        logging.getLogger(name).setLevel(logging.WARNING)
    SqlAlchemyStore(store.uri, store.artifact_root).engine.dispose()

