"""The MLflow servers harness starts (`harness ui`, `harness server`, the private server of
`--workers`): their port checked before they start, the host names they answer to, and lives
tied to ours, so that no server outlives the harness process that started it, however that
process ends (Ctrl-C, SIGTERM, SIGKILL)."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError

START_TIMEOUT = 180.0  # seconds for a server to answer /health (MLflow imports a lot)
LOCALHOST = ("localhost", "127.0.0.1", "[::1]")
# Ends the server's process group when harness ends: harness holds the write end of the pipe
# on this process's stdin, and the kernel closes it however harness dies (SIGKILL included).
WATCHDOG = r"""
import os, signal, sys, time
group = int(sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is harness's to handle: it stops the group
def end(*_):
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                os._exit(0)
            time.sleep(0.1)
    os._exit(0)
signal.signal(signal.SIGTERM, end)
while os.read(0, 1):
    pass
end()
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """One line, before anything starts, if `host:port` cannot be listened on."""
    if not 0 < port < 65536:
        raise HarnessError(f"--port: {port} is not a port number (1-65535)")
    try:
        family, _, _, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise HarnessError(f"--host: {host!r} is not an address of this machine") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise HarnessError(f"port {port} on {host} is already in use (another server?): pick another "
                                   "with --port N, or stop that one") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise HarnessError(f"--host: {host!r} is not an address of this machine") from None
            raise HarnessError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _interface_addresses() -> list[str]:
    """This machine's IPv4 addresses, one per network interface (Linux)."""
    import fcntl
    import struct

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:  # SIOCGIFADDR
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def host_names(host: str, extra: list[str]) -> list[str]:
    """The Host headers a server bound to `host` answers to: its own names and addresses (so a
    LAN client may use the machine's name), plus `extra`; any other name is refused, which is
    what defeats DNS rebinding."""
    names: list[str] = []
    if host in ("0.0.0.0", "::", "[::]", ""):
        names += [*LOCALHOST, *_interface_addresses()]
    elif is_loopback(host):
        names += LOCALHOST
    else:
        names.append(f"[{host}]" if ":" in host else host)
    if not is_loopback(host):
        names += [n for n in (socket.gethostname(), socket.getfqdn()) if n not in LOCALHOST]
    names += [n.strip() for item in extra for n in item.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def server_command(backend_store_uri: str, host: str, port: int, artifacts_destination: str | None = None,
                   default_artifact_root: str | None = None, workers: int | None = None,
                   names: list[str] | None = None, auth: bool = False) -> list[str]:
    """`mlflow server` on `host:port`; with an artifacts destination it proxies artifact uploads,
    so clients on other machines need no access to the server's disk."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
           "--host", host, "--port", str(port)]
    if artifacts_destination:
        cmd += ["--serve-artifacts", "--artifacts-destination", artifacts_destination]
    if default_artifact_root:
        cmd += ["--default-artifact-root", default_artifact_root]
    if workers:
        cmd += ["--workers", str(workers)]
    if names:
        hosts = [h for n in names for h in (n, f"{n}:{port}")] if "*" not in names else ["*"]
        origins = [f"{scheme}://{n}:{port}" for n in names if "*" not in n for scheme in ("http", "https")]
        cmd += ["--allowed-hosts", ",".join(hosts), "--cors-allowed-origins", ",".join(origins)]
    if auth:
        cmd += ["--app-name", "basic-auth"]
    return cmd


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ours without the client credentials, MLflow's GenAI job
    runner off (four more processes harness does not use), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return {**env, **(extra or {})}


class Tethered:
    """A command in a process group of its own, ended with us: by `stop()`, or, if harness
    dies without running it, by a small watchdog process that sees harness's end of a pipe
    close and ends the group (TERM, then KILL)."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None):
        out = open(log, "ab") if log else None
        try:
            self.proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=out,
                                         stderr=subprocess.STDOUT if out else None)
        finally:
            if out:
                out.close()
        read, self._write = os.pipe()
        # A session of its own too: a signal to harness's whole group (a terminal hanging up,
        # `kill -9 -PGID`) must not take the watchdog down with harness.
        self.watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(self.proc.pid)], stdin=read,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        os.close(read)

    def __enter__(self) -> "Tethered":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, grace: float = 15.0) -> int | None:
        """End the whole group (the server and every process it started); its exit code."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            break
        if self._write is not None:
            os.close(self._write)  # the watchdog ends what is left of the group, and itself
            self._write = None
            self.watchdog.wait(30)
        return self.proc.poll()

    def wait(self) -> int:
        return self.proc.wait()


def wait_healthy(proc: Tethered, url: str, what: str, timeout: float = START_TIMEOUT) -> None:
    """Until `url`/health answers; one line if the server exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.proc.poll()
        if code is not None:
            raise HarnessError(f"{what} exited (code {code}) before it answered")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    proc.stop()
    raise HarnessError(f"{what} did not answer at {url} within {timeout:.0f} s")


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


def serve(plan: ServerPlan, on_ready: Callable[[], None] | None = None) -> None:
    """Run the server until Ctrl-C or SIGTERM (then stop it and return), or until it fails."""
    from harness.interrupts import signals_interrupt

    with Tethered(plan.cmd, plan.env) as proc:
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
    raise HarnessError(f"{plan.what} stopped by itself (exit code {code}); its output is above")


def start_background_server(store_uri: str, artifact_root: str | None, log_path: Path) -> tuple[Tethered, str]:
    """A private loopback server over a local store, so concurrent workers never write to one
    sqlite file at once. Artifacts keep the store's own location. Returns (process, uri)."""
    port = free_port()
    cmd = server_command(store_uri, "127.0.0.1", port, default_artifact_root=artifact_root, workers=1)
    proc = Tethered(cmd, server_env(), log=log_path)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, uri, f"the MLflow server for {store_uri} (log: {log_path})")
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
                      links=prepare_views(tracker, url))


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
    folder = store.local_dir or Path("mlruns").resolve()  # a database server: state beside us
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
                      check, notes)
