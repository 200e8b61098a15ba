"""`harness data synthetic|prepare|split|check`: making, splitting and checking data folders."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli._app import app, handled, out

data_app = typer.Typer(help="Make, split or check data folders.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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
