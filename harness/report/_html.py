"""The report as one self-contained HTML file: images inline as data: URIs, a small inline script
to sort tables, no reference to anything on a network."""

from __future__ import annotations

import base64
from html import escape

from harness.report._document import Cell, Code, Figure, Para, Section, Sub, Table, Thumbs

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em} caption{caption-side:bottom;text-align:left;
color:#555;font-size:.9em;padding-top:.3em} th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;
vertical-align:top} th{background:#f4f4f4} table.sortable th{cursor:pointer} table.sortable th:after{content:" ↕";
color:#aaa} p.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .7em} figure{margin:1em 0}
figure img{max-width:100%} figcaption{color:#555;font-size:.9em} .thumbs{display:flex;flex-wrap:wrap;gap:.6em}
.thumbs figure{width:140px;margin:0} .thumbs figcaption{font-size:.75em;word-break:break-all}
pre{background:#f6f6f6;padding:.7em;overflow:auto;font-size:.85em} nav li{display:inline;margin-right:1em}
"""

# Click a header: sort by that column's data-sort values (numbers as numbers), again to reverse.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var dir = th.dataset.dir === "asc" ? -1 : 1; th.dataset.dir = dir === 1 ? "asc" : "desc";
    var key = function (tr) { var c = tr.cells[col]; return c ? c.dataset.sort : ""; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === undefined) return 1;
      if (y === undefined) return -1;
      var nx = Number(x), ny = Number(y);
      if (x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
      return dir * x.localeCompare(y);
    }).forEach(function (tr) { body.appendChild(tr); });
  });
});
"""


NOTE = ' class="note"'


def render(title: str, intro: list[str], sections: list[Section]) -> str:
    toc = "".join(f'<li><a href="#{s.id}">{escape(s.title)}</a></li>' for s in sections)
    body = "\n".join(_section(s) for s in sections)
    lead = "".join(f"<p>{escape(line)}</p>" for line in intro)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body><h1>{escape(title)}</h1>{lead}<nav><ul>{toc}</ul></nav>\n"
            f"{body}\n<script>{SCRIPT}</script></body></html>\n")


def _section(section: Section) -> str:
    inner = "\n".join(_block(b) for b in section.blocks)
    return f'<section id="{escape(section.id)}"><h2>{escape(section.title)}</h2>\n{inner}</section>'


def _block(block) -> str:
    if isinstance(block, Para):
        return f"<p{NOTE if block.note else ''}>{escape(block.text)}</p>"
    if isinstance(block, Sub):
        return f"<h3>{escape(block.text)}</h3>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Code):
        return f"<details><summary>{escape(block.title)}</summary><pre><code>{escape(block.text)}</code></pre></details>"
    if isinstance(block, Thumbs):
        return '<div class="thumbs">' + "".join(_figure(f) for f in block.items) + "</div>"
    raise TypeError(f"no HTML for {type(block).__name__}")


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(figure.caption)}">'
            f"<figcaption>{escape(figure.caption)}</figcaption></figure>")


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    rows = []
    for r in t.rows:
        attrs = "".join(f' data-{escape(k)}="{escape(v)}"' for k, v in r.data.items())
        cells = "".join(f"<td{_sort_key(c) if t.sortable else ''}>{escape(c.text)}</td>" for c in r.cells)
        rows.append(f"<tr{attrs}>{cells}</tr>")
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    cls = ' class="sortable"' if t.sortable else ""
    return f'<table id="{escape(t.id)}"{cls}>{caption}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _sort_key(c: Cell) -> str:
    """The exact value (repr of a float) the inline script sorts by; none for an empty cell."""
    if c.sort is None:
        return ""
    return f' data-sort="{escape(repr(c.sort) if isinstance(c.sort, float) else str(c.sort))}"'
