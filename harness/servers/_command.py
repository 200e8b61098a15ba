"""The `mlflow server` command line and the environment a server runs in."""

from __future__ import annotations

import os
import sys


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
