"""Rendering a LocateReport: the per-module error curve, the blamed module, isolation, hint; and its JSON form."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from coordinator.render.console import column_style, make_console, num, print_unwrapped
from coordinator.render.report_io import REPORT_SCHEMA, description_dict, finite

if TYPE_CHECKING:
    from coordinator.locate.locate_run import LocateReport

WINDOW = 12  # rows shown on each side of the blamed (and the first diverging) module
MAX_QUIET_ROWS = 40  # a net with nothing blamed: the first rows, then the summary line


def shown_rows(report: LocateReport, all_rows: bool = False) -> list[tuple[int, object]]:
    """(index in the whole curve, verdict) to print: every row, or a window around the blamed and the first
    diverging module (the blamed row is always in it); indices stay real."""
    verdicts = sorted(report.verdicts, key=lambda v: v.pair.pt.end)
    indexed = list(enumerate(verdicts))
    if all_rows or len(verdicts) <= 2 * WINDOW + 1:
        return indexed
    focus = [v for v in (report.blamed, report.located.first_diverging) if v is not None and v in verdicts]
    if not focus:
        return indexed[:MAX_QUIET_ROWS] if len(verdicts) > MAX_QUIET_ROWS else indexed
    keep = {i for v in focus for i in range(verdicts.index(v) - WINDOW, verdicts.index(v) + WINDOW + 1)}
    return [(i, v) for i, v in indexed if i in keep]


def print_locate(report: LocateReport, console: Console | None = None, all_rows: bool = False) -> None:
    """Print the per-module error curve (estimates, exact where fetched), the verdict, isolation and hint.

    A long curve shows a window around the blamed module with the rows' real indices; ``all_rows`` shows
    every row."""
    console = console or make_console()
    for role, desc in (("pt", report.pt), ("ms", report.ms)):
        console.print(f"{role}: {desc.framework} {desc.framework_version} on {desc.device} ({desc.hostname}), "
                      f"model {desc.model_spec or desc.model_class}")
    abs_floor = report.abs_floor
    if report.weights is not None and report.weights.note():
        console.print(f"weights: {report.weights.note()}")
    what = "the gradient each module passes on (wrt its inputs), in backward order," if report.backward else \
        "each module's output"
    table = Table(title=f"error of {what} vs float64 torch (relative L2); floor = float32 torch's own; "
                        f"ratio = error / max(floor, {abs_floor:g}), diverges at >= {report.ratio_limit:g}",
                  title_justify="left")
    if report.backward:
        console.print(f"backward locate (loss {report.backward}): a module's output here is the gradient it passes on, "
                      "its inputs the gradient flowing into it from the loss")
    for column in ("#", "PyTorch module", "MindSpore cell", "type", "error", "floor", "ratio",
                   "grad in" if report.backward else "inputs", ""):
        table.add_column(column, **column_style(column))
    blamed_key = report.blamed.key if report.blamed else None
    rows = shown_rows(report, all_rows)
    curve = sorted(report.verdicts, key=lambda v: v.pair.pt.end)
    previous = -1
    for index, v in [*rows, (len(curve), None)]:
        if index != previous + 1:
            gap = curve[previous + 1:index]
            diverging = sum(1 for g in gap if g.output_diverges)
            table.add_row("...", f"[dim]{len(gap)} row(s) not shown, {diverging} diverging[/]", *[""] * 7)
        previous = index
        if v is None:
            break
        exact = "" if v.key not in report.exact else " (exact)"
        mark = "[red]<- blamed[/]" if v.key == blamed_key else ("[yellow]diverges[/]" if v.output_diverges else "")
        kind = v.pair.pt.type if "other type" not in v.pair.how else f"{v.pair.pt.type} / {v.pair.ms.type}"
        table.add_row(str(index), v.pair.pt.path or "<root>", v.pair.ms.path or "<root>", kind,
                      num(v.out_err) + exact, num(v.out_floor),
                      "-" if math.isnan(v.out_ratio) else f"{v.out_ratio:.3g}",
                      "match" if v.inputs_match else "[red]differ[/]", mark)
    print_unwrapped(console, table)
    if len(rows) < len(report.verdicts):
        console.print(f"showing {len(rows)} of {len(report.verdicts)} paired modules, around the blamed one; "
                      "--all for every row")
    unmatched = list(dict.fromkeys(f"{u.side} {u.call.path or '<root>'} ({u.call.type})"
                                   for u in (*report.alignment.unmatched_ms, *report.alignment.unmatched_pt)))
    if unmatched:
        console.print("unpaired (not compared, never blamed): " + ", ".join(unmatched[:10]) +
                      (f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else ""))
    if report.reference_note:
        console.print(f"[yellow]no float64 reference[/]: {report.reference_note}; MindSpore is judged against "
                      f"torch float32 with no noise floor (diverges at >= {report.ratio_limit * report.abs_floor:g})")
    failing_outputs = [o.ref_name for o in report.outputs if not o.passed]
    console.print(("gradient wrt the net's inputs" if report.backward else "network outputs") + " (plain rtol/atol): " +
                  ("within tolerance" if not failing_outputs else f"[red]differ[/]: {', '.join(failing_outputs)}"))
    t = report.traffic
    if t:
        console.print(f"moved {t['summary_bytes'] + t['fetched_bytes']:,} bytes (summaries {t['summary_bytes']:,}, "
                      f"full tensors {t['fetched_bytes']:,}); a full dump would be {t['full_dump_bytes']:,}")
    if report.isolation is not None:
        i = report.isolation
        verdict = "[red]confirmed[/]" if i.confirmed else "[green]not confirmed[/]"
        if not i.replayed:
            console.print(f"isolated replay: [yellow]{i.note}[/]")
        elif math.isinf(i.ratio):
            console.print(f"isolated replay: {verdict}: {i.note}")
        else:
            console.print(f"isolated replay: {verdict}: MindSpore on torch's exact inputs errs "
                          f"{num(i.ms_on_pt_inputs_err)} ({'-' if math.isnan(i.ratio) else f'{i.ratio:.3g}'}x floor "
                          f"{num(i.floor)}); torch on MindSpore's inputs differs by {num(i.pt_on_ms_inputs_err)}"
                          + (f"; {i.note}" if i.note else ""))
    if report.backward_note:
        console.print(f"[yellow]backward[/]: {report.backward_note}")
    if report.blamed is None:
        console.print(f"[green]PASS[/]: {report.located.reason}")
    else:
        console.print(f"[red]FIRST DIVERGENT{' (backward)' if report.backward else ''}[/]: {report.located.reason}")
        if report.isolation is not None and report.isolation.replayed and not report.isolation.confirmed:
            console.print("[yellow]not confirmed by the isolated replay[/]: on identical inputs the two behave alike, "
                          "so the difference comes from code around it that locate does not see (unpaired cells, "
                          "functional calls in a forward); look there")
        if report.hint:
            console.print(f"[yellow]hint[/]: {report.hint}")


def _verdict_dict(v) -> dict:
    return {"pt": v.pair.pt.path, "ms": v.pair.ms.path, "call": v.pair.pt.call, "type": v.pair.pt.type,
            "ms_type": v.pair.ms.type, "error": v.out_err, "floor": v.out_floor, "ratio": v.out_ratio,
            "inputs_match": v.inputs_match, "diverges": v.output_diverges, "signal": v.signal, "note": v.note,
            "aligned_by": v.pair.how}


def locate_to_dict(report: LocateReport) -> dict:
    """The JSON form (schema msparity.report/1, kind locate); first_divergent is null when nothing is blamed."""
    first = None
    if report.blamed is not None:
        first = _verdict_dict(report.blamed)
        exact = report.exact.get(report.blamed.key)
        first["exact"] = exact.__dict__ if exact else None
        first["reason"] = report.located.reason
        first["hint"] = report.hint
        first["isolated"] = report.isolation.__dict__ if report.isolation else None
    return finite({
        "schema": REPORT_SCHEMA,
        "kind": "locate",
        "passed": report.passed,
        "first_divergent": None if report.backward else first,
        "first_divergent_backward": first if report.backward else None,
        "backward_loss": report.backward or None,
        "backward_note": report.backward_note or None,
        "reason": report.located.reason,
        "curve": [_verdict_dict(v) for v in sorted(report.verdicts, key=lambda v: v.pair.pt.end)],
        "unmatched": [{"side": u.side, "path": u.call.path, "type": u.call.type, "reason": u.reason}
                      for u in (*report.alignment.unmatched_pt, *report.alignment.unmatched_ms)],
        "outputs": [o.to_dict() for o in report.outputs],
        "reference_note": report.reference_note or None,
        "seed": report.seed,
        "inputs": [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in report.inputs],
        "workers": {"pt": description_dict(report.pt), "ms": description_dict(report.ms)},
        "weights": report.weights.to_dict() if report.weights else None,
        "traffic": report.traffic,
        "seconds": report.seconds,
    })
