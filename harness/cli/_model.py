"""`harness predict` and `harness export`: using a logged winner."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from harness.cli._app import app, err, handled, out

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
