"""`harness demo` and `harness compare`: the study's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from harness.cli._app import app, err, handled, out

@app.command()
@handled
def demo(
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    data: Path = typer.Option(Path("data/synthetic"), help="Where the synthetic photos go."),
):
    """Offline demo: synthetic photos, random-weight backbone, a few trials of both methods, compared."""
    from harness.study._demo import run_demo
    from harness.cli._progress import RichReporter
    from harness.cli._render import comparison_table, sweep_table

    with RichReporter(err) as reporter:
        results, comparison = run_demo(data, tracking_uri, reporter)
    for result in results:
        out.print(sweep_table(result))
    out.print(comparison_table(comparison))
    out.print("Open the results in the MLflow UI:  [bold]harness ui[/]  and follow the links it prints")


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
