"""Rendering a TrainReport: loss curve table, failing tensors, hints; and its JSON form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from coordinator.metrics import NOISE_RATIO_LIMIT
from coordinator.render.console import column_style, make_console, num, print_unwrapped
from coordinator.render.report_io import REPORT_SCHEMA, description_dict, finite

if TYPE_CHECKING:
    from coordinator.train.train_step import TrainReport

MAX_ROWS_SHOWN = 30


def _kind_cell(step, kind: str) -> str:
    total = step.count(kind)
    if not total:
        return "-"
    bad = len(step.failing(kind))
    return f"[green]{total}/{total}[/]" if not bad else f"[red]{total - bad}/{total}[/]"


def print_train(report: TrainReport, console: Console | None = None) -> None:
    """Print the loss curves, per-kind agreement per step, the first failing tensors and the hints."""
    console = console or make_console()
    o = report.options
    for role, desc in (("pt", report.pt), ("ms", report.ms)):
        console.print(f"{role}: {desc.framework} {desc.framework_version} on {desc.device} ({desc.hostname}), "
                      f"model {desc.model_spec or desc.model_class}")
    shapes = ", ".join(f"{s.name} {list(s.shape)}:{s.dtype}" for s in report.inputs)
    console.print(f"training: loss {o.loss}, optimizer {o.optimizer}, lr {o.lr:g}, {len(report.steps)} step(s), "
                  f"batches (seed {report.seed}): {shapes}; target {list(report.target.shape)}:{report.target.dtype}")
    table = Table(title="loss and tensors per step (agreeing / compared)", title_justify="left")
    for column in ("step", "PyTorch loss", "MindSpore loss", "rel diff", *report.kinds):
        table.add_column(column, no_wrap=True)
    for step in report.steps:
        loss_style = "" if step.loss_passed else "[red]"
        table.add_row(str(step.step), f"{step.pt_loss:.7g}", f"{loss_style}{step.ms_loss:.7g}",
                      f"{step.loss_rel_diff:.2e}", *(_kind_cell(step, k) for k in report.kinds))
    print_unwrapped(console, table)
    unreached = sorted({r.pt_name for s in report.steps for r in s.rows if r.kind == "grad" and "no gradient" in r.note})
    if unreached:
        console.print(f"note: {len(unreached)} parameter(s) the loss does not reach (torch leaves no gradient, "
                      f"MindSpore returns zeros), compared as zeros: {', '.join(unreached[:8])}"
                      f"{' ...' if len(unreached) > 8 else ''}")
    noise = [r for s in report.steps for r in s.rows
             if r.comparison is not None and not r.comparison.passed and r.within_noise]
    if noise:
        worst = max(noise, key=lambda r: r.noise_ratio)
        console.print(f"note: {len(noise)} tensor(s) outside rtol/atol are within torch's own float32 rounding noise "
                      f"(each step also run in float64 from the same state; the most, {worst.kind} {worst.pt_name}, "
                      f"at {worst.noise_ratio:.3g}x torch's error, the bar {NOISE_RATIO_LIMIT:g}x)")
    for step in report.steps:
        for note in step.notes:
            console.print(f"[yellow]warning[/]: step {step.step}: {note}")
    failing = [(s.step, r) for s in report.steps for r in s.failing()]
    if failing:
        first_step = failing[0][0]
        shown = [r for s, r in failing if s == first_step][:MAX_ROWS_SHOWN]
        detail = Table(title=f"step {first_step}: tensors that differ (pt = reference)", title_justify="left")
        for column in ("kind", "PyTorch name", "MindSpore name", "module", "max abs diff", "max rel diff",
                       "cosine sim", "allclose ratio", "x noise", "note"):
            detail.add_column(column, **column_style(column))
        for row in shown:
            c = row.comparison
            cells = (("-",) * 4 if c is None else
                     (num(c.max_abs_diff), num(c.max_rel_diff), f"{c.cosine_similarity:.7f}", f"{c.allclose_ratio:.2%}"))
            detail.add_row(row.kind, row.pt_name, row.ms_name, row.module_type, *cells, num(row.noise_ratio), row.note)
        print_unwrapped(console, detail)
    if report.order_note:
        console.print(f"[yellow]note[/]: {report.order_note}")
    for hint in report.hints:
        console.print(f"[yellow]hint[/]: {hint}")
    if report.passed:
        console.print(f"[green]PASS[/]: {len(report.steps)} training step(s) agree: loss, gradients, updated weights "
                      "and buffers" + (", optimizer moments" if any(s.count('moment1') for s in report.steps) else ""))
    else:
        bad = sorted({f"{r.kind} {r.pt_name}" for _, r in failing})
        losses = [s.step for s in report.steps if not s.loss_passed]
        what = (f"loss differs at step(s) {', '.join(map(str, losses))}; " if losses else "") + \
            f"{len(bad)} tensor(s) differ: {', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}"
        console.print(f"[red]FAIL[/]: {what}")


def train_to_dict(report: TrainReport) -> dict:
    """The JSON form of a train-step report (schema msparity.report/1, kind train-step)."""
    o = report.options
    return finite({
        "schema": REPORT_SCHEMA,
        "kind": "train-step",
        "passed": report.passed,
        "seed": report.seed,
        "options": {"loss": o.loss, "optimizer": o.optimizer, "lr": o.lr},
        "inputs": [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in report.inputs],
        "loss_curve": {"pt": [s.pt_loss for s in report.steps], "ms": [s.ms_loss for s in report.steps]},
        "steps": [{
            "step": s.step, "passed": s.passed, "pt_loss": s.pt_loss, "ms_loss": s.ms_loss,
            "loss_rel_diff": s.loss_rel_diff, "loss_passed": s.loss_passed, "notes": list(s.notes),
            "tensors": [{"kind": r.kind, "pt": r.pt_name, "ms": r.ms_name, "module_type": r.module_type,
                         "passed": r.passed, "note": r.note, "explained": r.explained or None,
                         "error_vs_float64": r.error, "floor": r.floor, "noise_ratio": r.noise_ratio,
                         "comparison": r.comparison.to_dict() if r.comparison is not None else None} for r in s.rows],
        } for s in report.steps],
        "order_note": report.order_note or None,
        "hints": list(report.hints),
        "workers": {"pt": description_dict(report.pt), "ms": description_dict(report.ms)},
        "weights": report.weights.to_dict() if report.weights else None,
        "seconds": report.seconds,
    })
