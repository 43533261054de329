"""Result tables as real HTML: the faithfulness scoreboard and the analyses' markdown tables.

The analyses return markdown tables (for notebooks and docs); the widget and the reports show
them through :func:`markdown_table_html`, so no pipes and dashes reach the screen.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

__all__ = ["TABLE_STYLE", "markdown_table_html", "markdown_tables_html", "scoreboard_html"]

#: Inline style of the tables (the widget's HTML output has no stylesheet of ours).
TABLE_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd"
_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _inline(cell: str) -> str:
    """Escape a cell; ``*text*`` (the tables' only markup) becomes italics."""
    text = html.escape(cell)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)


def markdown_table_html(md: str) -> str:
    """One markdown pipe table (header, rule, rows) as an HTML ``<table>``.

    Columns whose rule ends in ``:`` are right-aligned. Text is escaped; a line that is not a
    table row ends the table (its text is dropped: use :func:`markdown_tables_html` for text
    with tables).
    """
    lines = [ln for ln in md.strip().splitlines() if ln.strip()]
    if len(lines) < 2 or not _RULE.match(lines[1].strip()):
        return f"<p>{html.escape(md)}</p>"
    header, rule = _cells(lines[0]), _cells(lines[1])
    right = [r.endswith(":") for r in rule]

    def row(cells: list[str], tag: str) -> str:
        out = []
        for i, c in enumerate(cells):
            align = "right" if i < len(right) and right[i] else "left"
            out.append(f'<{tag} style="{_CELL};text-align:{align}">{_inline(c)}</{tag}>')
        return "<tr>" + "".join(out) + "</tr>"

    body = [row(_cells(ln), "td") for ln in lines[2:] if ln.strip().startswith("|")]
    return f'<table style="{TABLE_STYLE}"><thead>{row(header, "th")}</thead><tbody>{"".join(body)}</tbody></table>'


def markdown_tables_html(text: str) -> str:
    """Text with markdown tables: tables become ``<table>``, other lines escaped paragraphs."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.append(markdown_table_html("\n".join(block)))
            block.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            block.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p style=\"margin:4px 0\">{html.escape(line)}</p>")
    flush()
    return "".join(out)


def scoreboard_html(
    ranking: Sequence[tuple[str, float, float, float]],
    *,
    colors: Mapping[str, str] | None = None,
    caption: str = "",
    pending: Sequence[str] = (),
    failed: Mapping[str, str] | None = None,
) -> str:
    """The faithfulness scoreboard: one row per method, best first.

    Parameters
    ----------
    ranking
        ``(method, deletion AUC, insertion AUC, insertion - deletion)`` rows, already sorted
        best first (:meth:`~saliency_widget.analysis.FaithfulnessResult.ranking`); the method
        ``"random"`` is the random-order reference, shown in italics.
    colors
        Optional line colour per method, shown as a swatch (matches the chart).
    caption
        Text above the table (escaped).
    pending
        Methods still computing (listed at the end as "computing ...").
    failed
        ``{method: reason}`` of methods that could not run on this model.
    """
    head = (
        f'<tr><th style="{_CELL};text-align:left">method</th>'
        f'<th style="{_CELL};text-align:right" title="area under the deletion curve">deletion AUC<br/>'
        f"<small>lower is better</small></th>"
        f'<th style="{_CELL};text-align:right" title="area under the insertion curve">insertion AUC<br/>'
        f"<small>higher is better</small></th>"
        f'<th style="{_CELL};text-align:right" title="the sort key">insertion − deletion<br/>'
        f"<small>higher is better</small></th></tr>"
    )
    rows = []
    for name, d, i, s in ranking:
        swatch = ""
        if colors and name in colors:
            swatch = f'<span style="display:inline-block;width:10px;height:10px;background:{colors[name]};margin-right:4px"></span>'
        label = "<i>random order (reference)</i>" if name == "random" else html.escape(name)
        rows.append(
            f'<tr><td style="{_CELL}">{swatch}{label}</td><td style="{_CELL};text-align:right">{d:.3f}</td>'
            f'<td style="{_CELL};text-align:right">{i:.3f}</td><td style="{_CELL};text-align:right">{s:+.3f}</td></tr>'
        )
    for name in pending:
        rows.append(f'<tr><td style="{_CELL}">{html.escape(name)}</td><td colspan="3" style="{_CELL}">computing …</td></tr>')
    for name, why in (failed or {}).items():
        rows.append(
            f'<tr><td style="{_CELL}">{html.escape(name)}</td><td colspan="3" style="{_CELL}">n/a: {html.escape(why)}</td></tr>'
        )
    cap = f"<caption style=\"text-align:left;caption-side:top\">{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="sw-scoreboard" style="{TABLE_STYLE}">{cap}<thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
