"""The `harness` command line: Typer commands that parse, call one function and print."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from harness.errors import HarnessError

app = typer.Typer(help="Transfer-learning sweeps with KerasTuner, tracked in MLflow.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sweep_app = typer.Typer(help="Run a KerasTuner sweep of one method.", no_args_is_help=True)
data_app = typer.Typer(help="Make or prepare data folders.", no_args_is_help=True)
cache_app = typer.Typer(help="See or free the feature cache.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")
app.add_typer(data_app, name="data")
app.add_typer(cache_app, name="cache")

out = Console()
err = Console(stderr=True)


def handled(fn):
    """Known problems become one line on stderr and exit code 2; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM via harness.interrupts
            from harness.interrupts import exit_code

            err.print("[yellow]interrupted[/]: runs in progress were marked KILLED; "
                      "run the same command again to resume")
            raise typer.Exit(exit_code(exc)) from None

    return wrapper


def _sweep_command(method: str):
    def command(
        config: Path = typer.Option(Path(f"sweeps/{method}.toml"), help="Sweep file (TOML)."),
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
        from harness import config as config_mod
        from harness.launch import Launch, launch
        from harness.progress import RichReporter
        from harness.summary import result_view

        overrides = dict(data=data, backbone=backbone, weights=weights, image_size=image_size,
                         max_trials=max_trials, epochs=epochs, tuner=tuner, seed=seed, experiment=experiment)
        how = Launch(resume, fresh, workers, role, oracle, parent_run, connect_timeout, str(config.resolve()),
                     register)
        cfg = config_mod.load(config, method, overrides)
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
    directory: Path = typer.Argument(..., help="Folder to write {train,validation,test}/{cats,dogs} into."),
    per_class: int = typer.Option(20, "--per-class", help="Images per class in every split."),
    size: int = typer.Option(64, help="Image side in pixels."),
):
    """Write a small two-class JPEG image set in the tutorial's folder layout."""
    from harness.data import write_synthetic

    root = write_synthetic(directory, per_class, size)
    out.print(f"wrote {6 * per_class} images to {root}")


@data_app.command("prepare")
@handled
def data_prepare(
    source: Path = typer.Option(..., "--from", help="Folder of Kaggle-style cat.N.jpg / dog.N.jpg files."),
    dest: Path = typer.Option(..., "--to", help="Empty folder for the split."),
):
    """Build the tutorial's 1000/500/500-per-class split, deterministically."""
    from harness.data import prepare

    counts = prepare(source, dest)
    out.print(f"wrote {sum(counts.values())} images to {dest}: " +
              ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
@handled
def demo(
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    data: Path = typer.Option(Path("data/synthetic"), help="Where the synthetic photos go."),
):
    """Offline demo: synthetic photos, random-weight backbone, a few trials of both methods."""
    from harness.demo import run_demo
    from harness.progress import RichReporter
    from harness.summary import sweep_table

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
    from harness.tracking import Tracker, resolve_store, serve_ui
    from harness.views import prepare_views

    store = resolve_store(tracking_uri)
    base = f"http://127.0.0.1:{port}"
    links = prepare_views(Tracker(store), base)
    err.print(f"MLflow UI for {store.uri} at {base}  (Ctrl-C stops it)")
    for link in links:  # plain echo: rich would wrap the long URLs
        typer.echo(f"{link.label}\n  {link.url}")
    sys.exit(serve_ui(store, port))


@app.command()
@handled
def server(
    port: int = typer.Option(5000, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; 0.0.0.0 for other machines."),
    backend_store_uri: Optional[str] = typer.Option(
        None, "--backend-store-uri", help="SQLAlchemy URI (default: the project's sqlite store)."),
    artifacts_destination: Optional[str] = typer.Option(
        None, "--artifacts-destination", help="Where the server keeps uploaded artifacts."),
):
    """Start an MLflow tracking server (runs and artifacts) for sweeps across processes or machines."""
    from harness.tracking import resolve_store, serve, server_for

    store = resolve_store(backend_store_uri)
    err.print(f"MLflow tracking server for {store.uri} at http://{host}:{port}  (Ctrl-C stops it)")
    sys.exit(serve(server_for(store, host, port, artifacts_destination)))


@app.command()
@handled
def compare(
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: that of the latest sweep)."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    repeats: int = typer.Option(0, "--repeats", help="Retrain each best configuration with K more seeds."),
):
    """Compare the latest sweep of each method: test accuracy with 95% CI, difference, McNemar."""
    from harness.compare import run_compare
    from harness.summary import comparison_table

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
    from harness.predict import predict as run_predict

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
    from harness.export import export as run_export

    done = run_export(source, fmt, out_path, log, tracking_uri)
    out.print(f"wrote {done.format} of {done.model_uri} to {done.path} ({done.size_bytes / 1e6:.1f} MB)",
              highlight=False)
    if done.logged_to:
        out.print(f"logged as {done.logged_to}", highlight=False)


@cache_app.command("ls")
@handled
def cache_ls():
    """List the cached feature sets."""
    from harness.features import cache_root, list_entries

    entries = list_entries()
    for e in entries:
        out.print(f"{e['id']}  {e['backbone']:<12} {e['weights']:<24} {e['image_size']}px "
                  f"{e['images']} images  {e['bytes'] / 1e6:.1f} MB  extracted in {e['seconds']:.1f}s")
    out.print(f"{len(entries)} entries in {cache_root()}")


@cache_app.command("clear")
@handled
def cache_clear():
    """Delete every cached feature set."""
    from harness.features import clear

    out.print(f"freed {clear() / 1e6:.1f} MB")


if __name__ == "__main__":
    app()
