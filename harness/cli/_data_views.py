"""What `harness data check` and `harness data split` show: rich renderables (no TensorFlow import)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from harness.data._check import DataReport, Duplicates
from harness.data._folders import SPLITS
from harness.data._split import SplitResult

SHOWN = 20  # duplicate sets listed per kind; the counts cover all of them


def counts_table(splits: tuple[str, ...], classes: tuple[str, ...],
                 counts: dict[tuple[str, str], int]) -> Table:
    """Images per class (rows) and split (columns), with totals."""
    table = Table()
    table.add_column("class")
    for split in splits:
        table.add_column(split or "images", justify="right")
    for label in classes:
        table.add_row(Text(label), *(str(counts[s, label]) for s in splits))
    table.add_row("[bold]all[/]", *(f"[bold]{sum(counts[s, c] for c in classes)}[/]" for s in splits))
    return table


def _duplicates(heading: str, found: tuple[Duplicates, ...], style: str) -> list:
    files = sum(len(d.images) for d in found)
    lines = [Text.from_markup(f"[{style}]{heading}: {len(found)} images, {files} files[/]")]
    for dup in found[:SHOWN]:
        lines.append(Text("  " + "  =  ".join(i.path.as_posix() for i in dup.images)))
    if len(found) > SHOWN:
        lines.append(Text(f"  ... and {len(found) - SHOWN} more"))
    return lines


def check_view(report: DataReport) -> Group:
    """Counts per class and split, imbalance, then each kind of duplicate with its files."""
    parts: list = [Text(f"{report.root}: {len(report.classes)} classes, {report.images} images"),
                   counts_table(report.splits, report.classes, report.counts)]
    ratios = ", ".join(f"{s or 'all'} {report.imbalance(s):.2f}" for s in report.splits)
    parts.append(Text(f"class imbalance (largest / smallest class): {ratios}"))
    kinds = (("test leakage: the same image in two splits", report.leaks, "red"),
             ("conflicting labels: the same image under two classes", report.conflicts, "red"),
             ("repeated within one class of one split (info)", report.repeats, "yellow"))
    if report.splits == ("",):  # not split yet: no leakage to find
        kinds = kinds[1:]
    for heading, found, style in kinds:
        parts += _duplicates(heading, found, style) if found else [Text(f"{heading.split(':')[0]}: none")]
    return Group(*parts)


def split_view(result: SplitResult) -> Group:
    how = ("hard links" if not result.copied else "copies" if not result.linked
           else f"{result.linked} hard links, {result.copied} copies")
    parts: list = [Text(f"wrote {result.images} images to {result.dest} ({how})"),
                   counts_table(SPLITS, result.classes, result.counts)]
    if result.kept_together:
        parts.append(Text(f"{result.kept_together} sets of identical files within a class were each "
                          "kept in one split"))
    return Group(*parts, Text(f"next: harness data check {result.dest}"))

