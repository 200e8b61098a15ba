"""`harness sweep feature-extraction|fine-tune` and `harness init`: sweeps and their sweep files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from harness.cli._app import app, err, handled, out

sweep_app = typer.Typer(help="Run a KerasTuner sweep of one method.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


def _sweep_command(method: str):
    def command(
        config: Optional[Path] = typer.Option(None, help="Sweep file (TOML); default: the packaged one "
                                              "(`harness init` copies it for editing)."),
        data: Optional[str] = typer.Option(None, help="Data folder: {train,validation,test}/<class>/<images>."),
        backbone: Optional[str] = typer.Option(None, help="vgg16 | mobilenet_v2"),
        weights: Optional[str] = typer.Option(None, help="imagenet | none | PATH to a .weights.h5 file"),
        image_size: Optional[int] = typer.Option(None, "--image-size", help="Image side in pixels."),
        max_trials: Optional[int] = typer.Option(None, "--max-trials"),
        epochs: Optional[int] = typer.Option(None, help="Epochs per phase."),
        tuner: Optional[str] = typer.Option(None, help="random | bayesian | hyperband"),
        seed: Optional[int] = typer.Option(None),
        tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
        experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: data folder name)."),
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
    ):
        from harness.config import _settings as config_mod
        from harness.study._launch import Launch, launch, launch_warnings
        from harness.cli._progress import RichReporter
        from harness.cli._render import result_view

        overrides = dict(data=data, backbone=backbone, weights=weights, image_size=image_size,
                         max_trials=max_trials, epochs=epochs, tuner=tuner, seed=seed, experiment=experiment)
        how = Launch(resume, fresh, workers, role, oracle, parent_run, connect_timeout, register)
        cfg = config_mod.load(config, method, overrides)
        for warning in launch_warnings(how):
            err.print(escape(warning).replace("warning:", "[yellow]warning:[/]", 1), highlight=False, soft_wrap=True)
        with RichReporter(err) as reporter:
            result = launch(cfg, tracking_uri, how, reporter)
        out.print(result_view(result))

    command.__doc__ = f"Sweep the {method} method's hyperparameters with KerasTuner."
    return handled(command)


for _method in ("feature-extraction", "fine-tune"):
    sweep_app.command(_method)(_sweep_command(_method))


@app.command()
@handled
def init(
    directory: Path = typer.Argument(Path("."), help="Folder to write the sweep files into."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing sweep files."),
):
    """Write the two default sweep files into a folder, to edit and pass with --config."""
    from harness.config._settings import write_defaults

    for path in write_defaults(directory, force):
        out.print(f"wrote {path}")
    out.print("edit them, then: harness sweep <method> --config FILE")
