"""One self-contained HTML page per run, drawn from the run's JSON form (so `msparity report` re-renders it).

At the top, the verdict in one sentence; then both workers' environment, the plots and the tables. Kinds:
locate (error / noise floor per module along the execution order, log scale, the bar and the blamed module
marked), train-step (both loss curves, the worst tensor per step against torch's noise), compare (each output's
largest difference, the histogram of element-wise differences of the worst ones), compare-dirs /
compare-grads (the files that differ most, ranked), and the weight files (render/html_weights.py).
"""

from __future__ import annotations

import html
import math

from coordinator.metrics import NOISE_RATIO_LIMIT
from coordinator.render.html_page import document, figure, histograms, number, ranked, svg, table


def page(report: dict) -> str:
    """The HTML page of one run's JSON report."""
    from coordinator.render.html_weights import WEIGHT_PARTS

    parts = {**_PARTS, **WEIGHT_PARTS}.get(report.get("kind", "report"), _generic)
    return document(report, *parts(report))


def _locate(report: dict) -> tuple[str, list[str], list[str]]:
    first = report.get("first_divergent") or report.get("first_divergent_backward")
    where = "backward " if report.get("backward_loss") else ""
    if first:
        ratio = number(first.get("ratio"))
        verdict = (f"First {where}divergent module: pt {first['pt'] or '<root>'} ({first['type']}) ~ ms "
                   f"{first['ms'] or '<root>'}" + (f", {ratio:.3g}x torch's float32 noise" if math.isfinite(ratio)
                                                   else ""))
    else:
        verdict = f"PASS: every paired module is within float32 noise of torch ({where or 'forward '}locate)"
    curve = report.get("curve") or []
    plots = []
    if curve:
        fig, ax = figure()
        ratios = [max(number(r.get("ratio")), 1e-3) if math.isfinite(number(r.get("ratio"))) else math.nan
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
        ax.set_xlabel("module, in backward order (the loss's end first)" if where else "module, in execution order")
        ax.set_ylabel(("gradient " if where else "") + "error / torch's float32 noise")
        ax.legend(loc="best")
        plots.append(svg(fig))
    rows = [(i, r["pt"] or "<root>", r["ms"] or "<root>", r["type"], number(r.get("error")), number(r.get("floor")),
             number(r.get("ratio")), "match" if r.get("inputs_match") else "differ") for i, r in enumerate(curve)]
    tables = [f"<p>{html.escape(report.get('reason') or '')}</p>"]
    if first and first.get("hint"):
        tables.append(f"<p><b>hint</b>: {html.escape(first['hint'])}</p>")
    headers = ("#", "PyTorch module", "MindSpore cell", "type", "gradient error" if where else "error", "floor", "ratio",
               "gradient in" if where else "inputs")
    tables.append(table(headers, rows,
                        [bool(r.get("diverges")) for r in curve]))
    return verdict, plots, tables


def _train(report: dict) -> tuple[str, list[str], list[str]]:
    steps = report.get("steps") or []
    failing = [s["step"] for s in steps if not s.get("passed")]
    verdict = (f"PASS: {len(steps)} training step(s) agree" if not failing else
               f"FAIL: training step(s) {', '.join(map(str, failing[:10]))} differ")
    plots = []
    if steps:
        fig, (loss, worst) = figure(11, 3.6, columns=2)
        xs = [s["step"] for s in steps]
        loss.plot(xs, [s["pt_loss"] for s in steps], marker="o", label="PyTorch")
        loss.plot(xs, [s["ms_loss"] for s in steps], marker="x", label="MindSpore")
        loss.set_xlabel("step")
        loss.set_ylabel("loss")
        loss.legend()
        ratios = [max((number(t.get("noise_ratio")) for t in s["tensors"]
                       if math.isfinite(number(t.get("noise_ratio")))), default=math.nan) for s in steps]
        worst.semilogy(xs, [max(r, 1e-3) if math.isfinite(r) else math.nan for r in ratios], marker="o")
        worst.axhline(NOISE_RATIO_LIMIT, color="#b00020", linestyle="--", linewidth=1)
        worst.set_xlabel("step")
        worst.set_ylabel("worst tensor / torch's noise")
        plots.append(svg(fig))
    tables = []
    for step in steps[:3]:
        rows = [(t["kind"], t["pt"], t["ms"], number(t.get("error_vs_float64")), number(t.get("floor")),
                 number(t.get("noise_ratio")), "pass" if t.get("passed") else "FAIL", t.get("note") or "")
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
    plots = ranked([(o.get("ref_name"), number(o.get("max_abs_diff"))) for o in outputs],
                   "largest difference per output")
    plots += histograms([(o.get("ref_name"), number(o.get("max_abs_diff")), o.get("diff_histogram"))
                         for o in outputs], "element-wise |difference| of the worst outputs")
    return verdict, plots, [table(
        ("name", "shape", "allclose", "cosine", "max abs diff", "mean abs diff", "max rel diff"),
        [(o.get("ref_name"), o.get("ref_shape"), o.get("passed"), number(o.get("cosine_similarity")),
          number(o.get("max_abs_diff")), number(o.get("mean_abs_diff")), number(o.get("max_rel_diff")))
         for o in outputs], [not o.get("passed") for o in outputs])]


def _dirs(report: dict) -> tuple[str, list[str], list[str]]:
    pairs = report.get("pairs") or []
    bad = [p for p in pairs if not p.get("passed")]
    verdict = (f"PASS: {report.get('compared')} pairs compared" if report.get("passed") else
               f"FAIL: {len(bad)} of {len(pairs)} pairs differ or lack a partner")
    name = lambda p: (p.get("orig") or p.get("target") or {}).get("name")  # noqa: E731
    scored = sorted(((name(p), number((p.get("metrics") or {}).get("max_abs_diff"))) for p in pairs),
                    key=lambda r: -r[1] if math.isfinite(r[1]) else 0)
    rows = [(name(p), (p.get("target") or {}).get("name"), p.get("status"),
             number((p.get("metrics") or {}).get("max_abs_diff")), number((p.get("metrics") or {}).get("cosine_similarity")))
            for p in sorted(pairs, key=lambda p: p.get("passed", False))[:500]]
    plots = ranked(scored[:30], "the files that differ most")
    plots += histograms([(name(p), number((p.get("metrics") or {}).get("max_abs_diff")),
                          (p.get("metrics") or {}).get("diff_histogram")) for p in pairs],
                        "element-wise |difference| of the worst files")
    return verdict, plots, [
        table(("orig", "target", "status", "max abs diff", "cosine"), rows, [r[2] != "pass" and r[2] != "passed"
                                                                             for r in rows])]


def _generic(report: dict) -> tuple[str, list[str], list[str]]:
    verdict = f"{'PASS' if report.get('passed') else 'FAIL'}: {report.get('kind', 'report')}"
    return verdict, [], [f"<pre>{html.escape(str({k: v for k, v in report.items() if k != 'workers'}))[:20000]}</pre>"]


_PARTS = {"locate": _locate, "train-step": _train, "compare": _compare, "compare-dirs": _dirs, "compare-grads": _dirs}
