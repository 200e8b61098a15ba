"""The report as Markdown: the same blocks as the HTML, its figures as PNG files beside it."""

from __future__ import annotations

from harness.report._document import Code, Figure, Para, Section, Sub, Table, Thumbs


def render(title: str, intro: list[str], sections: list[Section]) -> tuple[str, dict[str, bytes]]:
    """(report.md's text, {relative path: PNG bytes} to write beside it)."""
    files: dict[str, bytes] = {}
    lines = [f"# {title}", "", *(f"{line}\n" for line in intro)]
    lines += [f"- [{s.title}](#{_anchor(s.title)})" for s in sections] + [""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _block(block, files) + [""]
    return "\n".join(lines).rstrip() + "\n", files


def _anchor(title: str) -> str:
    """The anchor GitHub and MkDocs give a heading: lower case, spaces as dashes, punctuation dropped."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _block(block, files: dict[str, bytes]) -> list[str]:
    if isinstance(block, Para):
        return [f"> **Note:** {block.text}" if block.note else block.text]
    if isinstance(block, Sub):
        return [f"### {block.text}"]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        files[block.name] = block.png
        return [f"![{_cell(block.caption)}]({block.name})", "", f"*{_cell(block.caption)}*"]
    if isinstance(block, Code):
        return [f"<details><summary>{block.title}</summary>", "", "```json", block.text, "```", "", "</details>"]
    if isinstance(block, Thumbs):
        out = []
        for item in block.items:
            files[item.name] = item.png
            out.append(f"- ![{_cell(item.caption)}]({item.name}) {_cell(item.caption)}")
        return out
    raise TypeError(f"no Markdown for {type(block).__name__}")


def _table(t: Table) -> list[str]:
    header = [h or " " for h in t.header]
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(_cell(c.text) for c in r.cells) + " |" for r in t.rows]
    if t.caption:
        out += ["", f"*{_cell(t.caption)}*"]
    return out


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or image alt text."""
    return text.replace("|", "\\|").replace("\n", " ").replace("[", "\\[").replace("]", "\\]")
