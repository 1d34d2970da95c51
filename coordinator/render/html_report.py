"""One self-contained HTML page per run, drawn from the run's JSON form (so `msparity report` re-renders it).

The page opens from disk with nothing fetched: inline CSS, plots as inline SVG (matplotlib, Agg), and a few
lines of inline script that sort a table when its header is clicked. At the top, the verdict in one
sentence; then both workers' environment, the plots and the tables. Kinds: locate (error / noise floor per
module along the execution order, log scale, the bar and the blamed module marked), train-step (both loss
curves, the worst tensor per step against torch's noise), compare (each output's largest difference) and
compare-dirs / compare-grads (the files that differ most, ranked).
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Sequence

from coordinator.metrics import NOISE_RATIO_LIMIT

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.3em}.pass{color:#17702a}.fail{color:#b00020}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;word-break:break-all}
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


def page(report: dict) -> str:
    """The HTML page of one run's JSON report."""
    kind = report.get("kind", "report")
    verdict, plots, tables = _PARTS.get(kind, _generic)(report)
    status = "pass" if report.get("passed") else "fail"
    body = [f'<h1 class="{status}">{html.escape(verdict)}</h1>', _environment(report), *plots, *tables]
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>msparity {html.escape(kind)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + f"<script>{SORT_SCRIPT}</script></body></html>\n")


def _environment(report: dict) -> str:
    rows = []
    for role, desc in (report.get("workers") or {}).items():
        rows.append((role, f"{desc.get('framework')} {desc.get('framework_version')} on {desc.get('device')} "
                           f"({desc.get('hostname')}), model {desc.get('model_spec') or desc.get('model_class')}"))
    for key in ("seed", "rtol", "atol", "map", "orig_dir", "target_dir", "backward_loss"):
        if report.get(key) is not None:
            rows.append((key, str(report[key])))
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
        return f'<td data-v="{value!r}">{shown}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # matplotlib's RDF block: links, no content
    return text[text.index("<svg"):]  # inline: no XML prolog


def _figure(width: float = 10, height: float = 3.6, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "msparity"  # the same page for the same report
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(width, height))


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def _locate(report: dict) -> tuple[str, list[str], list[str]]:
    first = report.get("first_divergent") or report.get("first_divergent_backward")
    where = "backward " if report.get("backward_loss") else ""
    if first:
        ratio = _number(first.get("ratio"))
        verdict = (f"First {where}divergent module: pt {first['pt'] or '<root>'} ({first['type']}) ~ ms "
                   f"{first['ms'] or '<root>'}" + (f", {ratio:.3g}x torch's float32 noise" if math.isfinite(ratio)
                                                   else ""))
    else:
        verdict = f"PASS: every paired module is within float32 noise of torch ({where or 'forward '}locate)"
    curve = report.get("curve") or []
    plots = []
    if curve:
        fig, ax = _figure()
        ratios = [max(_number(r.get("ratio")), 1e-3) if math.isfinite(_number(r.get("ratio"))) else math.nan
                  for r in curve]
        ax.semilogy(range(len(curve)), ratios, marker=".", linewidth=1, label="error / noise floor")
        ax.axhline(NOISE_RATIO_LIMIT, color="#b00020", linestyle="--", linewidth=1, label=f"bar {NOISE_RATIO_LIMIT:g}x")
        if first:
            at = next((i for i, r in enumerate(curve) if r["pt"] == first["pt"] and r.get("call") == first.get("call")),
                      None)
            if at is not None:
                ax.axvline(at, color="#b00020", linewidth=1)
                ax.annotate(f"blamed: {first['pt'] or '<root>'}", (at, ratios[at] if math.isfinite(ratios[at]) else 1),
                            xytext=(5, 10), textcoords="offset points", color="#b00020")
        if len(curve) <= 40:  # few enough to name each module under its point
            ax.set_xticks(range(len(curve)), [r["pt"] or "<root>" for r in curve], rotation=60, ha="right",
                          fontsize=7)
        ax.set_xlabel("module, in execution order" + (" (backward)" if where else ""))
        ax.set_ylabel("error / torch's float32 noise")
        ax.legend(loc="upper left")
        plots.append(_svg(fig))
    rows = [(i, r["pt"] or "<root>", r["ms"] or "<root>", r["type"], _number(r.get("error")), _number(r.get("floor")),
             _number(r.get("ratio")), "match" if r.get("inputs_match") else "differ") for i, r in enumerate(curve)]
    tables = [f"<p>{html.escape(report.get('reason') or '')}</p>"]
    if first and first.get("hint"):
        tables.append(f"<p><b>hint</b>: {html.escape(first['hint'])}</p>")
    tables.append(table(("#", "PyTorch module", "MindSpore cell", "type", "error", "floor", "ratio", "inputs"), rows,
                        [bool(r.get("diverges")) for r in curve]))
    return verdict, plots, tables


def _train(report: dict) -> tuple[str, list[str], list[str]]:
    steps = report.get("steps") or []
    failing = [s["step"] for s in steps if not s.get("passed")]
    verdict = (f"PASS: {len(steps)} training step(s) agree" if not failing else
               f"FAIL: training step(s) {', '.join(map(str, failing[:10]))} differ")
    plots = []
    if steps:
        fig, (loss, worst) = _figure(11, 3.6, columns=2)
        xs = [s["step"] for s in steps]
        loss.plot(xs, [s["pt_loss"] for s in steps], marker="o", label="PyTorch")
        loss.plot(xs, [s["ms_loss"] for s in steps], marker="x", label="MindSpore")
        loss.set_xlabel("step")
        loss.set_ylabel("loss")
        loss.legend()
        ratios = [max((_number(t.get("noise_ratio")) for t in s["tensors"]
                       if math.isfinite(_number(t.get("noise_ratio")))), default=math.nan) for s in steps]
        worst.semilogy(xs, [max(r, 1e-3) if math.isfinite(r) else math.nan for r in ratios], marker="o")
        worst.axhline(NOISE_RATIO_LIMIT, color="#b00020", linestyle="--", linewidth=1)
        worst.set_xlabel("step")
        worst.set_ylabel("worst tensor / torch's noise")
        plots.append(_svg(fig))
    tables = []
    for step in steps[:3]:
        rows = [(t["kind"], t["pt"], t["ms"], _number(t.get("error_vs_float64")), _number(t.get("floor")),
                 _number(t.get("noise_ratio")), "pass" if t.get("passed") else "FAIL", t.get("note") or "")
                for t in step["tensors"]]
        tables.append(f"<h2>step {step['step']}</h2>" + "".join(f"<p>{html.escape(n)}</p>" for n in step.get("notes", [])))
        tables.append(table(("kind", "PyTorch name", "MindSpore name", "error vs float64", "floor", "x noise", "",
                             "note"), rows, [not t.get("passed") for t in step["tensors"]]))
    return verdict, plots, tables


def _compare(report: dict) -> tuple[str, list[str], list[str]]:
    outputs = report.get("outputs") or []
    bad = [o for o in outputs if not o.get("passed")]
    verdict = (f"PASS: {len(outputs)} output(s) within tolerance" if report.get("passed") else
               f"FAIL: {len(bad)} of {len(outputs)} output(s) differ")
    return verdict, _ranked([(o.get("ref_name"), _number(o.get("max_abs_diff"))) for o in outputs],
                            "largest difference per output"), [table(
        ("name", "shape", "allclose", "cosine", "max abs diff", "mean abs diff", "max rel diff"),
        [(o.get("ref_name"), o.get("ref_shape"), o.get("passed"), _number(o.get("cosine_similarity")),
          _number(o.get("max_abs_diff")), _number(o.get("mean_abs_diff")), _number(o.get("max_rel_diff")))
         for o in outputs], [not o.get("passed") for o in outputs])]


def _dirs(report: dict) -> tuple[str, list[str], list[str]]:
    pairs = report.get("pairs") or []
    bad = [p for p in pairs if not p.get("passed")]
    verdict = (f"PASS: {report.get('compared')} pairs compared" if report.get("passed") else
               f"FAIL: {len(bad)} of {len(pairs)} pairs differ or lack a partner")
    name = lambda p: (p.get("orig") or p.get("target") or {}).get("name")  # noqa: E731
    scored = sorted(((name(p), _number((p.get("metrics") or {}).get("max_abs_diff"))) for p in pairs),
                    key=lambda r: -r[1] if math.isfinite(r[1]) else 0)
    rows = [(name(p), (p.get("target") or {}).get("name"), p.get("status"),
             _number((p.get("metrics") or {}).get("max_abs_diff")), _number((p.get("metrics") or {}).get("cosine_similarity")))
            for p in sorted(pairs, key=lambda p: p.get("passed", False))[:500]]
    return verdict, _ranked(scored[:30], "the files that differ most"), [
        table(("orig", "target", "status", "max abs diff", "cosine"), rows, [r[2] != "pass" and r[2] != "passed"
                                                                             for r in rows])]


def _ranked(items: list[tuple[str, float]], title: str) -> list[str]:
    items = [(n, v) for n, v in items if math.isfinite(v) and v > 0]
    if not items:
        return []
    items = sorted(items, key=lambda item: -item[1])[:30]
    fig, ax = _figure(10, max(2.0, 0.28 * len(items) + 1))
    ax.barh(range(len(items)), [v for _, v in items])
    ax.set_yticks(range(len(items)), [str(n) for n, _ in items])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel("max abs diff")
    return [_svg(fig)]


def _generic(report: dict) -> tuple[str, list[str], list[str]]:
    verdict = f"{'PASS' if report.get('passed') else 'FAIL'}: {report.get('kind', 'report')}"
    return verdict, [], [f"<pre>{html.escape(str({k: v for k, v in report.items() if k != 'workers'}))[:20000]}</pre>"]


_PARTS = {"locate": _locate, "train-step": _train, "compare": _compare, "compare-dirs": _dirs, "compare-grads": _dirs}
