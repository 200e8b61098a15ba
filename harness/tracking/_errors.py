"""Failures of the MLflow store or tracking server as one clear line: checks before the first
request, failed requests, waiting out a server restart, and the names MLflow limits.
Exceptions are read by their type and attributes, so this module needs no MLflow import."""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any, Callable
from urllib.parse import urlparse

from harness.errors import HarnessError, StoreError, StoreUnavailable

SERVER_WAIT = 120.0  # seconds a store that went away mid-command gets to come back
MAX_NAME = 256  # MLflow validates up to 500 characters, but its database columns hold 256
CREDENTIALS = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


def server_wait() -> float:
    """HARNESS_SERVER_WAIT overrides how long to wait for a store to come back (seconds)."""
    try:
        return float(os.environ.get("HARNESS_SERVER_WAIT", SERVER_WAIT))
    except ValueError:
        raise HarnessError("HARNESS_SERVER_WAIT must be a number of seconds") from None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and all(exc is not s for s in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def shown(uri: str) -> str:
    """The URI as it may be printed: a password in it (postgresql://user:pw@host) masked."""
    parsed = urlparse(uri)
    if not parsed.password:
        return uri
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)).geturl()


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, cut after a whole sentence if it is long."""
    text = str(getattr(exc, "message", "") or exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    if len(line) <= limit:
        return line
    cut = line.rfind(". ", 0, limit)
    return line[:cut + 1] if cut > limit // 3 else line[:limit] + "..."


def _unavailable_reason(chain: list[BaseException]) -> str | None:
    """Why the store did not answer, if that is what happened; None for any other failure."""
    import requests
    import sqlalchemy

    for exc in chain:
        if isinstance(exc, sqlalchemy.exc.OperationalError):
            line = first_line(getattr(exc, "orig", None) or exc)
            return line if any(g in line for g in _DB_GONE) else None
    text = " ".join(str(e) for e in chain)
    network = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
               requests.exceptions.RetryError, ConnectionError, TimeoutError)
    if not any(isinstance(e, network) for e in chain) and not any(n in text for n in _NETWORK_TEXT):
        return None
    return next((reason for needle, reason in _REASONS if needle in text), "no answer")


_DB_GONE = ("database is locked", "could not connect", "Connection refused", "server closed",
            "terminating connection", "connection to server", "timeout expired")
_NETWORK_TEXT = ("Connection refused", "Max retries exceeded", "Connection aborted")  # MLflow's wording
_REASONS = (("Connection refused", "connection refused"), ("error responses", "it answers with server errors"),
            ("timed out", "timed out"), ("Connection aborted", "connection lost"),
            ("RemoteDisconnected", "connection lost"), ("reset by peer", "connection lost"))


def _http_status(chain: list[BaseException]) -> int | None:
    for exc in chain:
        status = getattr(exc, "get_http_status_code", None)
        code = getattr(exc, "error_code", None)
        if code == "UNAUTHENTICATED" or "error code 401" in str(exc):
            return 401
        if code == "PERMISSION_DENIED" or "error code 403" in str(exc):
            return 403
        if callable(status) and status() in (401, 403):
            return status()
    return None


def classify(exc: BaseException, uri: str, waited: float | None = None) -> StoreError:
    """The one line (and kind) a failed store request is reported as."""
    if isinstance(exc, StoreError):
        return exc
    uri = shown(uri)
    chain = _chain(exc)
    reason = _unavailable_reason(chain)
    if reason is not None:
        if waited is None:
            return StoreError(f"cannot reach tracking store {uri} ({reason}): start it, or check "
                              "--tracking-uri / MLFLOW_TRACKING_URI", "unavailable")
        return StoreUnavailable(
            f"tracking store {uri} stopped answering ({reason}) and was not back within {waited:.0f} s; "
            "nothing done so far is lost: run the same command again once it answers "
            "(a sweep continues where it stopped, also with --resume)")
    status = _http_status(chain)
    if status is not None:
        return _refused(status, " ".join(str(e) for e in chain), uri)
    code = next((getattr(e, "error_code", None) for e in chain if getattr(e, "error_code", None)), None)
    message = first_line(exc)
    missing = next((e for e in chain if isinstance(e, ModuleNotFoundError)), None)
    if missing is not None:
        return StoreError(f"tracking store {uri} needs a database driver that is not installed ({missing}): "
                          "install it (PostgreSQL: pip install 'psycopg[binary]', harness's `postgres` extra)")
    if code == "INVALID_STATE" and "active" in message:
        return StoreError(f"tracking store {uri}: {message} (deleted, e.g. in the MLflow UI); restore it "
                          "with `mlflow experiments restore`, or pick another name with --experiment NAME",
                          "deleted")
    if code == "RESOURCE_DOES_NOT_EXIST" or isinstance(exc, FileNotFoundError):
        return StoreError(f"tracking store {uri}: {message}", "not_found")
    if any(type(e).__name__ == "DatabaseError" for e in chain):
        return StoreError(f"tracking store {uri} is not a usable database ({message}): point --tracking-uri "
                          "at another store, or move this file away", "other")
    return StoreError(f"tracking store {uri}: {message}", "other")


def _refused(status: int, text: str, uri: str) -> StoreError:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 401 and not (user and os.environ.get("MLFLOW_TRACKING_PASSWORD")):
        return StoreError(f"tracking server {uri} needs a login (HTTP 401): set {CREDENTIALS} "
                          "to a user of that server", "unauthenticated")
    if status == 401:
        return StoreError(f"tracking server {uri} rejected the login of user {user!r} (HTTP 401): check "
                          f"{CREDENTIALS}", "unauthenticated")
    if "Invalid Host header" in text:
        host = urlparse(uri).netloc
        return StoreError(f"tracking server {uri} refuses the host name {host!r} (HTTP 403, its DNS-rebinding "
                          f"protection): start it with --allowed-hosts {host}, or use an address it "
                          "accepts", "host")
    return StoreError(f"tracking server {uri}: user {user!r} may not do this (HTTP 403): ask the server's "
                      f"admin for EDIT permission on the experiment, or use another {CREDENTIALS}",
                      "forbidden")


def probe_server(uri: str, timeout: float = 5.0) -> None:
    """An unreachable server fails in seconds here, not after MLflow's minutes of HTTP retries."""
    import socket

    parsed = urlparse(uri)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StoreError(f"cannot reach tracking server {shown(uri)} ({reason}): start it (harness server), or "
                         "check --tracking-uri / MLFLOW_TRACKING_URI", "unavailable") from None


def probe_database(uri: str, timeout: int = 5) -> None:
    """A database server (PostgreSQL, MySQL) that is down, refuses the login or lacks the
    database fails here in seconds, not after MLflow's two minutes of engine retries."""
    import sqlalchemy

    args = {"connect_timeout": timeout} if uri.startswith("postgresql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args)
    except ModuleNotFoundError as exc:
        raise classify(exc, uri) from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = first_line(getattr(exc, "orig", None) or exc)
        raise StoreError(f"cannot open tracking store {shown(uri)} ({reason}): check the URI (the database must "
                         "exist and accept this user), and that its server runs", "unavailable") from None
    finally:
        engine.dispose()


def check_sqlite(uri: str, path) -> None:
    """A sqlite store file must be MLflow's (or empty): MLflow would add its tables to any
    other database, and report a file that is no database at all with a traceback."""
    import sqlite3
    from contextlib import closing
    from urllib.parse import quote

    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"tracking store {uri} is not a usable database ({exc}): point --tracking-uri at "
                         "another file, or move this one away") from None
    if tables and not {"experiments", "runs", "alembic_version"} <= tables:
        raise StoreError(f"tracking store {uri} is a database of something else (tables: "
                         f"{', '.join(sorted(tables)[:5])}); harness will not add MLflow's tables to it: "
                         "point --tracking-uri at a new file")


class Patience:
    """Calls into the store. Once the store has answered, a call that finds it gone is
    retried for `wait` seconds (a server restart); every failure becomes a StoreError."""

    def __init__(self, uri: str, wait: float, on_wait: Callable[[str], None] | None = None):
        self.uri, self.wait, self.on_wait = uri, wait, on_wait or (lambda message: None)
        self.shown = shown(uri)
        self.reached = False  # the store answered once: a later failure may be a restart
        self.gave_up: float | None = None  # seconds waited in vain (or until Ctrl-C): later calls try once

    def call(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        first_failure, delay = None, 1.0
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every store failure becomes one line
                error = classify(exc, self.uri, self.gave_up)
                if error.kind != "unavailable" or not self.reached or self.gave_up is not None:
                    raise error from None
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                    self.on_wait(f"tracking store {self.shown} is not answering; waiting up to "
                                 f"{self.wait:.0f} s for it to come back")
                if now - first_failure >= self.wait:
                    self.gave_up = now - first_failure
                    raise classify(exc, self.uri, self.gave_up) from None
                self._sleep(min(delay, self.wait - (now - first_failure)), first_failure)
                delay = min(delay * 2, 10.0)
                continue
            if first_failure is not None:
                self.on_wait(f"tracking store {self.shown} answers again")
            self.reached = True
            return result

    def stop_waiting(self) -> None:
        """From now on a store that does not answer fails at once (clean-up after another failure)."""
        if self.gave_up is None:
            self.gave_up = 0.0

    def _sleep(self, seconds: float, since: float) -> None:
        try:
            time.sleep(max(seconds, 0.05))
        except KeyboardInterrupt:
            self.gave_up = time.monotonic() - since  # the clean-up that follows must not wait again
            raise


class Guarded:
    """An MlflowClient whose every method goes through a Patience."""

    def __init__(self, client, patience: Patience):
        self._client, self._patience = client, patience

    def __getattr__(self, name: str):
        method = getattr(self._client, name)
        if not callable(method):
            return method
        return lambda *args, **kwargs: self._patience.call(method, *args, **kwargs)


def check_experiment_name(name: str) -> None:
    """An experiment name MLflow (and every database it runs on) will take, else one line."""
    if not name or not name.strip():
        raise HarnessError("experiment name is empty: pass --experiment NAME")
    if len(name) > MAX_NAME:
        raise HarnessError(f"experiment name is {len(name)} characters long; MLflow stores at most {MAX_NAME}: "
                           "pass a shorter --experiment NAME")


def check_registered_model_name(name: str) -> None:
    """A registered-model name MLflow's registry will take (its own rules), else one line."""
    if not name or not name.strip():
        raise HarnessError("registered model name is empty")
    if "/" in name or ":" in name:
        raise HarnessError(f"registered model name {name!r}: MLflow does not allow '/' or ':' in it")
    norm = posixpath.normpath(name)
    if norm != name or norm in (".", "..") or norm.startswith("../"):
        raise HarnessError(f"registered model name {name!r}: MLflow rejects names that look like file paths")
    if len(name) > MAX_NAME:
        raise HarnessError(f"registered model name is {len(name)} characters long; MLflow stores at most "
                           f"{MAX_NAME}")
