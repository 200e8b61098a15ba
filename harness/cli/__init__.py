"""The `harness` command line: one module per command group, each a thin wrapper over the library;
library errors become one line and an exit code only here (imports: study and everything below)."""

from harness.cli._app import app
from harness.cli import _sweep, _data, _cache, _study, _servers, _model, _backbones, _report  # noqa: F401,E402  registers the commands

__all__ = ["app"]
