"""An open store: MLflow's client behind the Patience that turns failures into one line and waits
out a server restart. The modules beside this one (runs, reading, experiments, models) call
through `tracker.client`; a call that only renames an MlflowClient method is made on it directly."""

from __future__ import annotations

import logging
import os
from typing import Callable
from urllib.parse import urlparse

from harness.tracking._errors import Guarded, Patience, check_sqlite, probe_database, probe_server, server_wait
from harness.tracking._store import Store, sqlite_path

# Over HTTP, the Tracker's own Patience waits out a server restart; MLflow's minutes of
# retries per request would only hide it.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


class Tracker:
    """The store's guarded MlflowClient (`client`) and the raw one (`raw`); runs are addressed by id,
    never 'active'.

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
