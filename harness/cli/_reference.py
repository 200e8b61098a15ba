"""The CLI reference page: every command's help, as Typer renders it (docs/reference/cli.md)."""

from __future__ import annotations

import click
import typer.cli
import typer.main

from harness.cli._app import app


def cli_reference() -> str:
    """Markdown for every `harness` command and option, generated from the app itself."""
    command = typer.main.get_command(app)
    text = typer.cli.get_docs_for_click(obj=command, ctx=click.Context(command, info_name="harness"),
                                        name="harness", title="CLI reference")
    # help strings escape rich markup ("\[augmentation]"); Markdown shows the brackets as they are
    return text.replace("\\[", "[").strip() + "\n"
