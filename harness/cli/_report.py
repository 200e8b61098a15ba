"""`harness report`: the study written up as HTML and Markdown, and logged to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from harness.cli._app import app, handled, out


@app.command()
@handled
def report(
    out_dir: Optional[Path] = typer.Option(None, "--out", metavar="DIR",
                                           help="Folder for report.html, report.md and its PNGs "
                                                "(default: reports/<experiment>)."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    experiment: Optional[str] = typer.Option(None, "--experiment",
                                             help="MLflow experiment (default: that of the latest sweep)."),
    sweep: Optional[List[str]] = typer.Option(None, "--sweep", metavar="RUN_ID",
                                              help="A sweep's parent run (repeat for both methods); default: "
                                                   "the latest sweep of each method."),
    thumbnails: bool = typer.Option(True, "--thumbnails/--no-thumbnails",
                                    help="Show the test images both winners get wrong as thumbnails (or only "
                                         "list their paths, for a report published without the photos)."),
):
    """Write up the latest sweep of each method: the answer, curves, the search, hyperparameter
    importance, mistakes and what was run, as one self-contained HTML file and Markdown with PNGs."""
    from harness.report import build_report

    print_report(build_report(tracking_uri, experiment, sweep or [], out_dir, thumbnails))


def print_report(result) -> None:
    """Where the report went, after what it could not show."""
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    out.print(f"HTML:     {result.html}", highlight=False, soft_wrap=True)
    out.print(f"Markdown: {result.markdown}", highlight=False, soft_wrap=True)
    out.print(f"logged to MLflow run {result.run_id} (kind={result.run_kind}) under report/", highlight=False)
