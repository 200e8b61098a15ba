"""The `harness` command line."""

from harness.cli._commands import app

__all__ = ["app"]
