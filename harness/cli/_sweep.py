"""`harness sweep feature-extraction|fine-tune` and `harness init`: sweeps and their sweep files."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from harness.cli._app import app, err, handled, out
from harness.config import METHODS, Setting, SweepConfig, flagged, load, write_defaults

sweep_app = typer.Typer(help="Run a KerasTuner sweep of one method.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


def _sweep_command(method: str):
    def command(
        config: Optional[Path] = typer.Option(None, help="Sweep file (TOML); default: the packaged one "
                                              "(`harness init` copies it for editing)."),
        tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
        resume: bool = typer.Option(False, "--resume", help="Continue the interrupted sweep of this "
                                    "configuration; an error if there is none."),
        fresh: bool = typer.Option(False, "--fresh", help="Start a new sweep even if one was interrupted."),
        workers: int = typer.Option(0, help="Run the sweep on N local worker processes (plus a chief)."),
        role: Optional[str] = typer.Option(None, help="chief | worker: one part of a sweep over machines."),
        oracle: Optional[str] = typer.Option(None, help="HOST:PORT of the chief's oracle (--role)."),
        parent_run: Optional[str] = typer.Option(None, "--parent-run", help="Worker: the chief's parent run id."),
        connect_timeout: float = typer.Option(600.0, "--connect-timeout",
                                              help="Worker: seconds to wait for the chief."),
        register: Optional[str] = typer.Option(None, "--register", help="Register the winner as a new "
                                               "version of this MLflow registered model."),
        **settings,  # one option per declared setting flag, added to the signature below
    ):
        from harness.study._launch import Launch, launch, launch_warnings
        from harness.cli._progress import RichReporter
        from harness.cli._render import result_view

        how = Launch(resume, fresh, workers, role, oracle, parent_run, connect_timeout, register)
        cfg = load(config, method, given_settings(settings))  # a flag not given: the file's value stands
        for warning in launch_warnings(how):
            err.print(escape(warning).replace("warning:", "[yellow]warning:[/]", 1), highlight=False, soft_wrap=True)
        with RichReporter(err) as reporter:
            result = launch(cfg, tracking_uri, how, reporter)
        out.print(result_view(result))

    command.__doc__ = f"Sweep the {method} method's hyperparameters with KerasTuner."
    wrapped = handled(command)
    wrapped.__signature__ = with_setting_options(inspect.signature(command, eval_str=True))
    return wrapped


def with_setting_options(run_mode: inspect.Signature) -> inspect.Signature:
    """The command's signature as Typer reads it: --config, then an option per declared setting
    flag (typed by its declaration; None: not given), then the run-mode options."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [p.replace(kind=keyword) for p in run_mode.parameters.values() if p.kind is not p.VAR_KEYWORD]
    options = [inspect.Parameter(name, keyword, annotation=Optional[List[s.flag_kind] if s.listable else s.flag_kind],
                                 default=typer.Option(None, _spelling(s), help=_help(s)))
               for name, s in flagged(SweepConfig).items()]
    return run_mode.replace(parameters=params[:1] + options + params[1:])


def given_settings(settings: dict) -> dict:
    """The flags given: a repeated one (a listable setting) is the list a sweep file would hold."""
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in settings.items()
            if v is not None and v != [] and v != ()}


def _spelling(s: Setting) -> str:
    # a switch needs its off form too: the sweep file may have turned it on
    return f"{s.flag}/--no-{s.flag[2:]}" if s.kind is bool else s.flag


def _help(s: Setting) -> str:
    allowed = f" One of: {' | '.join(s.choices)}." if s.choices else ""
    one = " Repeat it to search several values." if s.listable else ""
    return escape(f"{s.help}.{allowed}{one}")  # [augmentation] is a table's name, not rich markup


for _method in METHODS:
    sweep_app.command(_method)(_sweep_command(_method))


@app.command()
@handled
def init(
    directory: Path = typer.Argument(Path("."), help="Folder to write the sweep files into."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing sweep files."),
):
    """Write the two default sweep files into a folder, to edit and pass with --config."""
    for path in write_defaults(directory, force):
        out.print(f"wrote {path}")
    out.print("edit them, then: harness sweep <method> --config FILE")
