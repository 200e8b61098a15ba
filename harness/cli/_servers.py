"""`harness ui` and `harness server`: the MLflow servers harness starts. They print harness's own
lines only (links, address, how to stop, errors); the server's own output (MLflow's notes,
warnings, uvicorn's start-up and access lines) goes to a log file named in one line, or with
`--verbose` to the terminal."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from harness.cli._app import app, err, handled, out


# `harness ui --verbose` as users type it; `harness --verbose ui` (the app's own flag) does the same
VERBOSE = typer.Option(False, "--verbose", help="The server's own output on the terminal, not in its log file.")


def _verbose(ctx: typer.Context, here: bool) -> bool:
    return here or bool(ctx.find_root().params.get("verbose"))


def _log_line(plan, verbose: bool) -> None:
    if plan.log and not verbose:
        err.print(f"server log: {escape(str(plan.log))}", highlight=False, soft_wrap=True)


@app.command()
@handled
def ui(
    ctx: typer.Context,
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    verbose: bool = VERBOSE,
):
    """Start the MLflow UI for the project's store, bound to 127.0.0.1; print links into its views."""
    from harness.servers import serve, ui_plan

    try:
        plan = ui_plan(tracking_uri, port)
    except KeyboardInterrupt:  # stopped while starting: nothing ran, nothing to say
        raise typer.Exit(130) from None
    for link in plan.links:  # plain echo: rich would wrap the long URLs
        typer.echo(f"{link.label}\n  {link.url}")
    if plan.remote:
        out.print(f"{plan.what} serves its own UI: open {plan.url}", soft_wrap=True)
        return
    err.print(f"{plan.what} at {plan.url}  (Ctrl-C stops it)", soft_wrap=True)
    verbose = _verbose(ctx, verbose)
    _log_line(plan, verbose)
    serve(plan, verbose=verbose)


@app.command()
@handled
def server(
    ctx: typer.Context,
    port: int = typer.Option(5000, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; 0.0.0.0 for other machines."),
    backend_store_uri: Optional[str] = typer.Option(
        None, "--backend-store-uri", help="SQLAlchemy URI (default: the project's sqlite store)."),
    artifacts_destination: Optional[str] = typer.Option(
        None, "--artifacts-destination", help="Where the server keeps uploaded artifacts."),
    auth: Optional[bool] = typer.Option(
        None, "--auth/--no-auth", help="MLflow basic auth (default: on unless --host is loopback)."),
    allowed_hosts: list[str] = typer.Option(
        [], "--allowed-hosts", help="More host names clients may use (comma-separated; besides --host "
                                    "and this machine's names)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Server worker processes (MLflow's default: 4)."),
    verbose: bool = VERBOSE,
):
    """Start an MLflow tracking server (runs and artifacts) for sweeps across processes or machines."""
    from harness.servers import serve, tracking_server_plan

    try:
        plan = tracking_server_plan(backend_store_uri, host, port, artifacts_destination, auth, allowed_hosts,
                                    workers)
    except KeyboardInterrupt:  # stopped while starting: nothing ran, nothing to say
        raise typer.Exit(130) from None
    for note in plan.notes:
        err.print(escape(note).replace("warning:", "[yellow]warning:[/]", 1), highlight=False, soft_wrap=True)
    err.print(f"{plan.what} on {host}:{port}  (Ctrl-C stops it)", soft_wrap=True)
    verbose = _verbose(ctx, verbose)
    _log_line(plan, verbose)
    serve(plan, lambda: err.print(f"ready: {plan.url}"), verbose=verbose)
