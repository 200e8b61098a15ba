"""Where the runs live: --tracking-uri, else MLFLOW_TRACKING_URI, else the project's SQLite file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from harness.errors import HarnessError
from harness.tracking._errors import shown

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
    return Store(f"sqlite:///{db}", (db.parent / "artifacts").as_uri())

