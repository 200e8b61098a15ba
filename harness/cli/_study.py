"""`harness demo`, `harness compare` and `harness study`: the study's commands."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from harness.cli._app import app, err, handled, out
from harness.cli._sweep import given_settings, with_setting_options


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
    _report(tracking_uri, comparison.experiment)
    out.print("Open the results in the MLflow UI:  [bold]harness ui[/]  and follow the links it prints")


def _report(tracking_uri: str | None, experiment: str, folder: Path | None = None) -> None:
    """The study's report (`harness report`), into the comparison run just logged."""
    from harness.cli._report import print_report
    from harness.report import build_report

    print_report(build_report(tracking_uri, experiment, [], folder))


@app.command()
@handled
def compare(
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: that of the latest sweep)."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    repeats: int = typer.Option(0, "--repeats", help="Retrain each best configuration with K more seeds."),
    report: bool = typer.Option(False, "--report", help="Then write the report (`harness report`) of the "
                                "same sweeps into reports/<experiment>, logged to this comparison run."),
):
    """Compare the latest sweep of each method: test accuracy with 95% CI, difference, McNemar."""
    from harness.study._compare import run_compare
    from harness.cli._render import comparison_table

    result = run_compare(tracking_uri, experiment, repeats)
    out.print(comparison_table(result))
    if report:
        _report(tracking_uri, result.experiment)


def study(
    config: Optional[Path] = typer.Option(None, help="Sweep file for both methods (no `method` key); default: "
                                          "each method's packaged one."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    repeats: int = typer.Option(0, "--repeats", help="Compare: retrain each best configuration with K more seeds."),
    out_dir: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="The report's folder "
                                           "(default: reports/<experiment>)."),
    **settings,
):
    """The whole study: both sweeps on the same data, compare, then the report. Run it again after
    an interruption and it goes on where it stopped: a finished sweep is not repeated."""
    from harness.study._whole import run_study
    from harness.cli._progress import RichReporter
    from harness.cli._render import comparison_table, sweep_table

    with RichReporter(err) as reporter:
        result = run_study(tracking_uri, reporter, config, given_settings(settings), repeats)
    for method, parent in result.found.items():
        out.print(f"{method}: finished sweep {parent} of this configuration found in the store; not repeated",
                  highlight=False)
    for swept in result.ran:
        out.print(sweep_table(swept))
    out.print(comparison_table(result.comparison))
    _report(tracking_uri, result.comparison.experiment, out_dir)


_study = handled(study)
_study.__signature__ = with_setting_options(inspect.signature(study, eval_str=True))
app.command("study")(_study)
