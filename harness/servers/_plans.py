"""The servers harness starts (`harness ui`, `harness server`, the private server of
`--workers`): what to run, where it answers, where its log goes, and running it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError
from harness.servers._command import server_command, server_env
from harness.servers._hosts import LOCALHOST, check_port, free_port, host_names, is_loopback
from harness.servers._process import Tethered, wait_healthy


@dataclass
class ServerPlan:
    """A server to run in the foreground: its command, environment and where it answers."""

    cmd: list[str]
    env: dict[str, str]
    url: str  # where to reach it from this machine
    what: str  # 'the MLflow UI for <store>', for messages
    check: Callable[[str], None] | None = None  # run once it answers (e.g. the admin can log in)
    notes: list[str] = field(default_factory=list)  # lines for the user (warnings, where the password is)
    remote: bool = False  # nothing to start: the store is a tracking server, with its own UI
    links: list = field(default_factory=list)  # harness.tracking._ui_views.Link: the sweeps' views in the UI
    log: Path | None = None  # where the server's own output goes (None: the terminal)


def state_folder(store) -> Path:
    """Where harness keeps a server's own files (auth, logs): the folder of a local store, so one
    folder is one store with all that belongs to it; for a database server, ./mlruns beside us,
    where `harness server` keeps its artifacts too (one place to look, whichever store)."""
    return store.local_dir or Path("mlruns").resolve()


def log_path(store, kind: str, port: int) -> Path:
    """`<state folder>/logs/<kind>-<port>.log`: one file per port, so two servers over one store
    (both on a host's port only once) never write into one file."""
    return state_folder(store) / "logs" / f"{kind}-{port}.log"


def _open_log(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        raise HarnessError(f"cannot write the server log {path} ({exc.strerror}): rerun with --verbose "
                           "to see the server's output on the terminal instead") from None


def serve(plan: ServerPlan, on_ready: Callable[[], None] | None = None, verbose: bool = False) -> None:
    """Run the server until Ctrl-C or SIGTERM (then stop it and return), or until it fails. Its
    own output goes to `plan.log`, or with `verbose` to our terminal."""
    from harness.interrupts import signals_interrupt

    log = None if verbose else plan.log
    _open_log(log)
    with Tethered(plan.cmd, plan.env, log=log) as proc:
        try:
            with signals_interrupt():
                wait_healthy(proc, plan.url, plan.what)
                if plan.check:
                    plan.check(plan.url)
                if on_ready:
                    on_ready()
                code = proc.wait()
        except KeyboardInterrupt:
            return
    raise HarnessError(f"{plan.what} stopped by itself (exit code {code}){proc.log_tail()}")


def start_background_server(store_uri: str, artifact_root: str | None, log_path: Path) -> tuple[Tethered, str]:
    """A private loopback server over a local store, so concurrent workers never write to one
    sqlite file at once. Artifacts keep the store's own location. Returns (process, uri)."""
    port = free_port()
    cmd = server_command(store_uri, "127.0.0.1", port, default_artifact_root=artifact_root, workers=1)
    proc = Tethered(cmd, server_env(), log=log_path)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, uri, f"the MLflow server for {store_uri}")  # the error ends with its log's end
    except BaseException:
        proc.stop()
        raise
    return proc, uri


def ui_plan(tracking_uri: str | None, port: int) -> ServerPlan:
    """`harness ui`: MLflow's own server on loopback with one worker (starts in seconds). A
    tracking server serves its own UI: then the plan is only its address (remote)."""
    from harness.tracking import Tracker, resolve_store

    from harness.tracking._ui_views import prepare_views

    store = resolve_store(tracking_uri)
    if store.uri.startswith(("http://", "https://")):
        tracker = Tracker(store)  # reachable, and the credentials work: one line if not
        url = store.uri.rstrip("/")
        return ServerPlan([], {}, url, f"the tracking server {store.shown}", remote=True,
                          links=prepare_views(tracker, url))
    check_port("127.0.0.1", port)
    tracker = Tracker(store)  # a store file that is no MLflow database: one line now, not the server's traceback
    cmd = server_command(store.uri, "127.0.0.1", port, default_artifact_root=store.artifact_root, workers=1,
                         names=list(LOCALHOST))
    url = f"http://127.0.0.1:{port}"
    return ServerPlan(cmd, server_env(), url, f"the MLflow UI for {store.shown}",
                      links=prepare_views(tracker, url), log=log_path(store, "ui", port))


def tracking_server_plan(backend_store_uri: str | None, host: str, port: int, artifacts_destination: str | None,
                         auth: bool | None, extra_hosts: list[str], workers: int | None = None) -> ServerPlan:
    """`harness server`: basic auth on unless bound to loopback (`auth` True/False overrides),
    Host headers limited to this machine's names plus `extra_hosts`, artifacts proxied."""
    from harness.servers import _auth as server_auth
    from harness.tracking import Tracker, resolve_store

    store = resolve_store(backend_store_uri)
    if store.uri.startswith(("http://", "https://")):
        raise HarnessError("--backend-store-uri must be a database (sqlite:///..., postgresql://...), "
                           "not another tracking server")
    if workers is not None and workers < 1:
        raise HarnessError(f"--workers: must be >= 1, got {workers}")
    check_port(host, port)
    Tracker(store)  # the database answers and is MLflow's: one line now, not a traceback later
    folder = state_folder(store)
    artifacts_destination = artifacts_destination or str(folder / "artifacts")
    loopback = is_loopback(host)
    auth = not loopback if auth is None else auth
    env, notes, check = server_env(), [], None
    if auth:
        admin, auth_env = server_auth.prepare(folder)
        env.update(auth_env)
        notes.append(admin.where())
        check = lambda url: server_auth.check_login(url, admin)  # noqa: E731
    elif not loopback:
        notes.append(f"warning: no authentication on {host}:{port}: anyone who can reach it can read, change "
                     "and delete every run (drop --no-auth to turn MLflow's basic auth on)")
    cmd = server_command(store.uri, host, port, artifacts_destination=artifacts_destination, workers=workers,
                         names=host_names(host, extra_hosts), auth=auth)
    local = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host in ("::", "[::]") else host
    local = f"[{local}]" if ":" in local and not local.startswith("[") else local
    return ServerPlan(cmd, env, f"http://{local}:{port}", f"the MLflow tracking server for {store.shown}",
                      check, notes, log=log_path(store, "server", port))
