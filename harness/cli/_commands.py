"""The `harness` command line: Typer commands that parse, call one function and print."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import HarnessError

app = typer.Typer(help="Transfer-learning sweeps with KerasTuner, tracked in MLflow.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sweep_app = typer.Typer(help="Run a KerasTuner sweep of one method.", no_args_is_help=True)
data_app = typer.Typer(help="Make, split or check data folders.", no_args_is_help=True)
cache_app = typer.Typer(help="See or free the feature cache.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")
app.add_typer(data_app, name="data")
app.add_typer(cache_app, name="cache")

out = Console()
err = Console(stderr=True)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"harness {version('harness')}")
        raise typer.Exit()


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's own start-up log lines."),
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
        from harness.progress import RichReporter
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


@data_app.command("synthetic")
@handled
def data_synthetic(
    directory: Path = typer.Argument(..., help="Folder to write {train,validation,test}/<class>/ into."),
    per_class: int = typer.Option(20, "--per-class", help="Images per class in every split."),
    size: int = typer.Option(64, help="Image side in pixels."),
    classes: int = typer.Option(2, help="Number of classes (2: the tutorial's cats and dogs)."),
):
    """Write a small synthetic JPEG image set (striped, tinted) in the split layout."""
    from harness.data._folders import write_synthetic

    root = write_synthetic(directory, per_class, size, classes=classes)
    out.print(f"wrote {3 * classes * per_class} images to {root}")


@data_app.command("prepare")
@handled
def data_prepare(
    source: Path = typer.Option(..., "--from", help="Folder of Kaggle-style cat.N.jpg / dog.N.jpg files."),
    dest: Path = typer.Option(..., "--to", help="Empty folder for the split."),
):
    """Build the tutorial's 1000/500/500-per-class cats/dogs split, deterministically."""
    from harness.data._folders import prepare

    counts = prepare(source, dest)
    out.print(f"wrote {sum(counts.values())} images to {dest}: " +
              ", ".join(f"{k} {v}" for k, v in counts.items()))


@data_app.command("split")
@handled
def data_split(
    source: Path = typer.Option(..., "--from", help="Folder of class folders: DIR/<class>/<images>."),
    dest: Path = typer.Option(..., "--to", help="New or empty folder for {train,validation,test}/<class>/."),
    validation: float = typer.Option(0.2, help="Fraction of each class for validation."),
    test: float = typer.Option(0.2, help="Fraction of each class for test."),
    seed: int = typer.Option(0, help="Shuffle seed: the same seed gives the same split."),
):
    """Split a folder of class folders into train/validation/test, stratified per class."""
    from harness.cli._data_views import split_view
    from harness.data._split import split_folder

    out.print(split_view(split_folder(source, dest, validation, test, seed)), soft_wrap=True)


@data_app.command("check")
@handled
def data_check(
    directory: Path = typer.Argument(..., help="Split data folder (or a folder of class folders)."),
):
    """Find identical images in two splits or under two classes (exit 1 if any); count classes."""
    from harness.data._check import check_folder
    from harness.cli._data_views import check_view

    report = check_folder(directory)
    out.print(check_view(report), soft_wrap=True)
    if report.problems:
        raise typer.Exit(1)


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


@app.command()
@handled
def demo(
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    data: Path = typer.Option(Path("data/synthetic"), help="Where the synthetic photos go."),
):
    """Offline demo: synthetic photos, random-weight backbone, a few trials of both methods."""
    from harness.study._demo import run_demo
    from harness.progress import RichReporter
    from harness.cli._render import sweep_table

    with RichReporter(err) as reporter:
        results = run_demo(data, tracking_uri, reporter)
    for result in results:
        out.print(sweep_table(result))
    out.print("Open the results in the MLflow UI:  [bold]harness ui[/]  and follow the links it prints")


@app.command()
@handled
def ui(
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
):
    """Start the MLflow UI for the project's store, bound to 127.0.0.1; print links into its views."""
    from harness.servers._servers import serve, ui_plan

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
    serve(plan)


@app.command()
@handled
def server(
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
):
    """Start an MLflow tracking server (runs and artifacts) for sweeps across processes or machines."""
    from harness.servers._servers import serve, tracking_server_plan

    try:
        plan = tracking_server_plan(backend_store_uri, host, port, artifacts_destination, auth, allowed_hosts,
                                    workers)
    except KeyboardInterrupt:  # stopped while starting: nothing ran, nothing to say
        raise typer.Exit(130) from None
    for note in plan.notes:
        err.print(escape(note).replace("warning:", "[yellow]warning:[/]", 1), highlight=False, soft_wrap=True)
    err.print(f"{plan.what} on {host}:{port}  (Ctrl-C stops it)", soft_wrap=True)
    serve(plan, lambda: err.print(f"ready: {plan.url}"))


@app.command()
@handled
def compare(
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: that of the latest sweep)."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    repeats: int = typer.Option(0, "--repeats", help="Retrain each best configuration with K more seeds."),
):
    """Compare the latest sweep of each method: test accuracy with 95% CI, difference, McNemar."""
    from harness.study._compare import run_compare
    from harness.cli._render import comparison_table

    result = run_compare(tracking_uri, experiment, repeats)
    out.print(comparison_table(result))


@app.command()
@handled
def predict(
    photos: list[str] = typer.Argument(..., help="Photo files, or folders (every image under them)."),
    run: Optional[str] = typer.Option(None, "--run", help="A sweep's or trial's run id (default: latest sweep)."),
    model: Optional[str] = typer.Option(None, "--model", help="Any MLflow model URI: models:/NAME/1, "
                                        "models:/NAME@alias, models:/NAME/latest, runs:/..."),
    out_csv: Optional[Path] = typer.Option(None, "--out", help="Also write every class's probability to this CSV."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
):
    """Print each photo's most probable class and its probability with a sweep's best model."""
    from harness.serving._predict import predict as run_predict

    result = run_predict(photos, run, tracking_uri, model, out_csv)
    err.print(f"model {result.uri}", highlight=False)
    for p in result.rows:
        typer.echo(f"{p.path}\t{p.label}\t{p.probability:.3f}")  # tab-separated, for scripts too
    if out_csv is not None:
        err.print(f"wrote {len(result.rows)} rows to {out_csv}", highlight=False)


@app.command()
@handled
def export(
    source: str = typer.Argument(..., help="A sweep's or trial's run id, or any MLflow model URI."),
    fmt: str = typer.Option(..., "--format", help="saved_model | tflite"),
    out_path: Path = typer.Option(..., "--out", help="Where to write it (a folder for saved_model)."),
    log: bool = typer.Option(False, "--log", help="Also log it as an artifact of the model's run."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
):
    """Export a winner as a TensorFlow SavedModel or a float32 TFLite flat buffer."""
    from harness.serving._export import export as run_export

    done = run_export(source, fmt, out_path, log, tracking_uri)
    out.print(f"wrote {done.format} of {done.model_uri} to {done.path} ({done.size_bytes / 1e6:.1f} MB)",
              highlight=False)
    if done.logged_to:
        out.print(f"logged as {done.logged_to}", highlight=False)


@cache_app.command("ls")
@handled
def cache_ls():
    """List the cached feature sets."""
    from harness.training._feature_cache import cache_root, list_entries

    entries = list_entries()
    for e in entries:
        k = e.get("views", "").split(";")[0].removeprefix("views=")
        views = f" ({k} augmented views of each training image)" if k else ""
        out.print(f"{e['id']}  {e['backbone']:<12} {e['weights']:<24} {e['image_size']}px "
                  f"{e['images']} images{views}  {e['bytes'] / 1e6:.1f} MB  extracted in {e['seconds']:.1f}s")
    out.print(f"{len(entries)} entries in {cache_root()}")


@cache_app.command("clear")
@handled
def cache_clear():
    """Delete every cached feature set."""
    from harness.training._feature_cache import clear

    out.print(f"freed {clear() / 1e6:.1f} MB")


if __name__ == "__main__":
    app()
