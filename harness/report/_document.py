"""The report as plain blocks (paragraphs, tables, figures, code, thumbnails), so the HTML and the
Markdown are two renderings of one content and never drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text; `note` marks what the report cannot show, and why."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class Sub:
    """A sub-heading within a section (one per method, say)."""

    text: str


@dataclass(frozen=True)
class Cell:
    """A table cell: the text shown, and the value a column sort uses (numbers sort as numbers)."""

    text: str
    sort: float | str | None = None


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    data: dict[str, str] = field(default_factory=dict)  # data-* attributes: which run a row shows


@dataclass(frozen=True)
class Table:
    id: str
    header: tuple[str, ...]
    rows: tuple[Row, ...]
    caption: str = ""
    sortable: bool = False


@dataclass(frozen=True)
class Figure:
    """A PNG, written beside report.md as `name` and inlined in the HTML."""

    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Code:
    title: str
    text: str


@dataclass(frozen=True)
class Thumbs:
    """Small images with a caption each (the test images the winners get wrong)."""

    items: tuple[Figure, ...]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple = ()


def cell(value, digits: int = 3) -> Cell:
    """A number as the report prints it (NaN and None as '-'), sorting by its exact value."""
    if value is None or (isinstance(value, float) and value != value):
        return Cell("-", None)
    if isinstance(value, float):
        return Cell(f"{value:.{digits}f}", value)
    if isinstance(value, int):
        return Cell(str(value), value)
    return Cell(str(value), str(value))


def row(*values, data: dict[str, str] | None = None) -> Row:
    return Row(tuple(v if isinstance(v, Cell) else cell(v) for v in values), data or {})


def table(id: str, header, rows, caption: str = "", sortable: bool = False) -> Table:
    return Table(id, tuple(header), tuple(rows), caption, sortable)
