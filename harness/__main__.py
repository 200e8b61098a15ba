"""`python -m harness` runs the CLI."""

from harness.cli._commands import app

app()
