"""The page shell every --html page shares: inline CSS, a sortable table, matplotlib figures as inline SVG.

Nothing is fetched: the CSS and the few lines that sort a table when its header is clicked are inline, and
each plot is an SVG drawn by matplotlib's Agg backend with its metadata block (links, no content) removed.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Sequence

from coordinator.metrics import DIFF_HISTOGRAM_EDGES

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.3em}.pass{color:#17702a}.fail{color:#b00020}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;overflow-wrap:break-word}
th,td.num{white-space:nowrap}
th{background:#f2f2f2;cursor:pointer}tr.bad td{background:#fde8ea}
.env td:first-child{font-weight:600}svg{max-width:100%;height:auto}
"""
SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],r=Array.from(b.rows),up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';
r.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,c=y.cells[i].dataset.v||y.cells[i].textContent;
var p=parseFloat(a),q=parseFloat(c);var d=(!isNaN(p)&&!isNaN(q))?p-q:a.localeCompare(c);return up?d:-d;});
r.forEach(function(row){b.appendChild(row);});});});
"""


def document(report: dict, verdict: str, plots: Sequence[str], tables: Sequence[str]) -> str:
    """The whole page: the verdict in one sentence, the environment, the plots, the tables, the sort script."""
    kind = report.get("kind", "report")
    status = "pass" if report.get("passed") else "fail"
    body = [f'<h1 class="{status}">{html.escape(verdict)}</h1>', environment(report), *plots, *tables]
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>msparity {html.escape(kind)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + f"<script>{SORT_SCRIPT}</script></body></html>\n")


def environment(report: dict) -> str:
    rows = []
    for role, desc in (report.get("workers") or {}).items():
        rows.append((role, f"{desc.get('framework')} {desc.get('framework_version')} on {desc.get('device')} "
                           f"({desc.get('hostname')}), model {desc.get('model_spec') or desc.get('model_class')}"))
    for key in ("seed", "rtol", "atol", "map", "orig_dir", "target_dir", "backward_loss"):
        if report.get(key) is not None:
            rows.append((key, str(report[key])))
    compared = report.get("outputs") or report.get("values") or []
    if report.get("rtol") is None and compared and compared[0].get("rtol") is not None:  # per tensor, by dtype
        rows.append(("rtol / atol", ", ".join(sorted({f"{c.get('rtol'):g} / {c.get('atol'):g} ({c.get('ref_dtype')})"
                                                      for c in compared if c.get("rtol") is not None}))))
    if report.get("inputs"):
        rows.append(("inputs", ", ".join(f"{i['name']} {i['shape']}:{i['dtype']}" for i in report["inputs"])))
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="env">{cells}</table>' if rows else ""


def table(headers: Sequence[str], rows: Sequence[Sequence], bad: Sequence[bool] = ()) -> str:
    """A sortable table; numbers sort as numbers (their exact value kept in data-v)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for index, row in enumerate(rows):
        cells = "".join(_cell(value) for value in row)
        marked = ' class="bad"' if index < len(bad) and bad[index] else ""
        lines.append(f"<tr{marked}>{cells}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>'


def _cell(value) -> str:
    if isinstance(value, float):
        shown = "-" if math.isnan(value) else f"{value:.4g}"
        return f'<td class="num" data-v="{value!r}">{shown}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # matplotlib's RDF block: links, no content
    return text[text.index("<svg"):]  # inline: no XML prolog


def figure(width: float = 10, height: float = 3.6, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "msparity"  # the same page for the same report
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(width, height))


def number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def ranked(items: list[tuple[str, float]], title: str) -> list[str]:
    """A bar per name, largest first (at most 30), on a log scale; nothing when no value is above 0."""
    items = [(n, v) for n, v in items if math.isfinite(v) and v > 0]
    if not items:
        return []
    items = sorted(items, key=lambda item: -item[1])[:30]
    fig, ax = figure(10, max(2.0, 0.28 * len(items) + 1))
    ax.barh(range(len(items)), [v for _, v in items])
    ax.set_yticks(range(len(items)), [str(n) for n, _ in items])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel("max abs diff")
    return [svg(fig)]


HISTOGRAM_LABELS = ("0", *(f"≤{edge:g}" for edge in DIFF_HISTOGRAM_EDGES[1:]), f">{DIFF_HISTOGRAM_EDGES[-1]:g}")


def histograms(items: list[tuple[str, float, list[int] | None]], title: str, most: int = 4) -> list[str]:
    """The |difference| histograms (metrics.DIFF_HISTOGRAM_EDGES) of the `most` worst items (name, max diff,
    counts), side by side; nothing when no item has one."""
    items = sorted((i for i in items if i[2] and math.isfinite(i[1])), key=lambda i: -i[1])[:most]
    if not items:
        return []
    fig, axes = figure(3.2 * len(items) + 1, 3.2, columns=len(items))
    for ax, (name, _, counts) in zip(axes if len(items) > 1 else [axes], items):
        ax.bar(range(len(counts)), [max(c, 0) for c in counts], color=["#17702a"] + ["#4a78b5"] * (len(counts) - 1))
        ax.set_yscale("symlog", linthresh=1)
        ax.set_xticks(range(len(counts)), HISTOGRAM_LABELS[:len(counts)], rotation=70, fontsize=7)
        name = str(name)  # a name is never cut: long ones wrap
        ax.set_title("\n".join(name[i:i + 36] for i in range(0, len(name), 36)), fontsize=8)
        ax.set_xlabel("|difference|", fontsize=8)
    (axes[0] if len(items) > 1 else axes).set_ylabel("elements")
    fig.suptitle(title, fontsize=10)
    return [svg(fig)]
