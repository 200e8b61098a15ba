"""MLflow's basic auth for `harness server`: the admin's credentials (MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD, else a generated password kept in a 0600 file in the store folder),
the auth app's configuration, and a check, once the server answers, that the admin can log in.
The password goes to the server in its environment only: never on a command line, in a log
line or in a run."""

from __future__ import annotations

import base64
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from harness.errors import HarnessError

MIN_PASSWORD = 12  # MLflow's basic auth refuses shorter passwords
FOLDER = "server-auth"


@dataclass(frozen=True)
class Admin:
    username: str
    password: str = field(repr=False)
    password_file: Path | None  # where a generated password is kept; None: from the environment
    database: Path  # the auth app's users and permissions

    def where(self) -> str:
        source = f"in {self.password_file} (mode 0600)" if self.password_file else "from MLFLOW_TRACKING_PASSWORD"
        return (f"basic auth on: admin user {self.username!r}, password {source}; clients set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing it whole."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _kept_secret(path: Path, length: int = 24) -> str:
    """A secret generated once and kept (0600) in `path`, so a restarted server keeps it."""
    if path.is_file():
        os.chmod(path, 0o600)
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(length)
    _write_private(path, value + "\n")
    return value


def prepare(store_folder: Path) -> tuple[Admin, dict[str, str]]:
    """The admin, and the environment that turns MLflow's basic-auth app on for the server."""
    folder = store_folder / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    username = os.environ.get("MLFLOW_TRACKING_USERNAME") or "admin"
    password, password_file = os.environ.get("MLFLOW_TRACKING_PASSWORD"), None
    if not password:
        password_file = folder / "admin-password"
        password = _kept_secret(password_file)
    if len(password) < MIN_PASSWORD:
        raise HarnessError(f"MLFLOW_TRACKING_PASSWORD is {len(password)} characters long; MLflow's basic auth "
                           f"needs at least {MIN_PASSWORD} (or unset it and harness generates one)")
    database = folder / "basic_auth.db"
    config = folder / "basic_auth.ini"
    _write_private(config, "\n".join([
        "[mlflow]",
        "default_permission = READ",  # a user the admin adds may read every experiment, change none
        f"database_uri = sqlite:///{str(database).replace('%', '%%')}",  # ini values interpolate %
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth", ""]))
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_USERNAME": username,
           "MLFLOW_AUTH_ADMIN_PASSWORD": password,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
           or _kept_secret(folder / "flask-secret-key", 32)}
    return Admin(username, password, password_file, database), env


def basic_auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def check_login(url: str, admin: Admin) -> None:
    """The admin can log in: the auth database may hold this user with an older password."""
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/users/get?username={quote(admin.username)}",
                                     headers={"Authorization": basic_auth_header(admin.username, admin.password)})
    try:
        urllib.request.urlopen(request, timeout=30).read()
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise HarnessError(f"the server at {url} did not let its admin {admin.username!r} in "
                               f"(HTTP {exc.code})") from None
        raise HarnessError(f"the server's user database {admin.database} already holds user {admin.username!r} "
                           "with another password: set MLFLOW_TRACKING_PASSWORD to that password, or delete "
                           "that file to start its users over") from None
