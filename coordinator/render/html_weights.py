"""The --html pages of the weight-file commands: compare-ckpt (each parameter's largest difference, ranked, and
the histograms of the worst), convert (what each torch tensor became) and weight-map (each pairing and how it
was found)."""

from __future__ import annotations

from collections import Counter

from coordinator.render.html_page import histograms, number, ranked, table


def _compare_ckpt(report: dict) -> tuple[str, list[str], list[str]]:
    values, shapes = report.get("values") or [], report.get("shapes") or []
    differ = [v for v in values if not v.get("passed")]
    alone = [s for s in shapes if s.get("shapes_equal") is None]
    misshaped = [s for s in shapes if s.get("shapes_equal") is False]
    if report.get("passed"):
        verdict = f"PASS: {len(values)} parameters agree"
    else:
        parts = [f"{len(differ)} of {len(values)} parameters differ" if differ else "",
                 f"{len(misshaped)} differ in shape" if misshaped else "",
                 f"{len(alone)} are in one file only" if alone else ""]
        verdict = "FAIL: " + ", ".join(p for p in parts if p)
    plots = ranked([(v.get("ref_name"), number(v.get("max_abs_diff"))) for v in values],
                   "largest difference per parameter")
    plots += histograms([(v.get("ref_name"), number(v.get("max_abs_diff")), v.get("diff_histogram"))
                         for v in values], "element-wise |difference| of the worst parameters")
    ordered = sorted(values, key=lambda v: bool(v.get("passed")))
    tables = [table(("orig", "target", "shape", "allclose", "cosine", "max abs diff", "mean abs diff"),
                    [(v.get("ref_name"), v.get("cand_name"), v.get("ref_shape"), v.get("passed"),
                      number(v.get("cosine_similarity")), number(v.get("max_abs_diff")),
                      number(v.get("mean_abs_diff"))) for v in ordered], [not v.get("passed") for v in ordered])]
    if alone or misshaped:
        odd = misshaped + alone
        tables.insert(0, "<h2>shapes that differ, parameters in one file only</h2>" + table(
            ("orig", "target", "orig shape", "target shape"),
            [(s.get("orig_name"), s.get("target_name"), s.get("orig_shape"), s.get("target_shape")) for s in odd],
            [True] * len(odd)))
    return verdict, plots, tables


def _convert(report: dict) -> tuple[str, list[str], list[str]]:
    rows = report.get("tensors") or []
    statuses = Counter(r.get("status") for r in rows)
    verdict = f"Converted {len(rows)} tensors into {report.get('out')}"
    summary = "<p>" + ", ".join(f"{count} {status}" for status, count in statuses.most_common()) + "</p>"
    return verdict, [], [summary, table(("torch name", "MindSpore name", "status", "torch shape", "MindSpore shape"),
                                        [(r.get("pt_name"), r.get("ms_name"), r.get("status"), r.get("pt_shape"),
                                          r.get("ms_shape")) for r in rows])]


def _weight_map(report: dict) -> tuple[str, list[str], list[str]]:
    rows = report.get("tensors") or []
    found = Counter(r.get("found_by") or "unpaired" for r in rows)
    renamed = sum(1 for r in rows if r.get("pt") != r.get("ms"))
    verdict = f"Wrote {report.get('out')}: {len(rows)} tensors, {renamed} renamed"
    summary = "<p>found by " + ", ".join(f"{how}: {count}" for how, count in found.most_common()) + \
        (f"; {report['how']}" if report.get("how") else "") + "</p>"
    return verdict, [], [summary, table(("torch name", "MindSpore name", "transform", "found by", "shape", "dtype",
                                         "module type"),
                                        [(r.get("pt"), r.get("ms"), r.get("transform"), r.get("found_by") or "unpaired",
                                          r.get("shape"), r.get("dtype"), r.get("module_type")) for r in rows],
                                        [not r.get("found_by") for r in rows])]


WEIGHT_PARTS = {"compare-ckpt": _compare_ckpt, "convert": _convert, "weight-map": _weight_map}
