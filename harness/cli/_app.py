"""The `harness` Typer app, its consoles, and the one place library errors become CLI errors."""

from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import HarnessError

app = typer.Typer(help="Transfer-learning sweeps with KerasTuner, tracked in MLflow.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

out = Console()
err = Console(stderr=True)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"harness {version('harness')}")
        raise typer.Exit()


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's own start-up log lines, and the MLflow servers' own output."),
         version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print harness's version and exit.")):
    """Transfer-learning sweeps with KerasTuner, tracked in MLflow."""
    if verbose:
        from harness import _quiet as quiet

        quiet.verbose()


def handled(fn):
    """Known problems become one line on stderr and exit code 2; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM via harness.interrupts
            from harness.interrupts import exit_code

            err.print("[yellow]interrupted[/]: runs in progress were marked KILLED; "
                      "run the same command again to resume")
            raise typer.Exit(exit_code(exc)) from None

    return wrapper
