"""Rendering a CompareReport: the workers, the weight sync, the output table and the verdict; and its JSON form."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from coordinator.metrics import TensorComparison
from coordinator.render.console import make_console, num
from coordinator.render.report_io import REPORT_SCHEMA, description_dict, finite

if TYPE_CHECKING:
    from coordinator.compare import CompareReport


def compare_to_dict(report: CompareReport) -> dict:
    """The JSON form of a compare report (schema msparity.report/1)."""
    return finite(
        {
            "schema": REPORT_SCHEMA,
            "kind": "compare",
            "passed": report.passed,
            "seed": report.seed,
            "inputs": [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in report.inputs],
            "outputs": [c.to_dict() for c in report.outputs],
            "pt_only_outputs": list(report.pt_only_outputs),
            "ms_only_outputs": list(report.ms_only_outputs),
            "notes": list(report.notes),
            "workers": {
                "pt": description_dict(report.pt),
                "ms": description_dict(report.ms),
            },
            "weights": report.weights.to_dict() if report.weights else None,
            "seconds": report.seconds,
        }
    )


def comparison_table(title: str, rows: list[TensorComparison]) -> Table:
    """The TroubleShooter result columns, plus max relative diff, shapes and dtypes."""
    table = Table(title=title, title_justify="left")
    for column in ("name", "shape", "dtype", "allclose", "allclose ratio", "cosine sim",
                   "max abs diff", "mean abs diff", "max rel diff", "rtol / atol"):
        table.add_column(column, overflow="fold", no_wrap=column != "name")
    for row in rows:
        shape = str(list(row.ref_shape)) if row.ref_shape == row.cand_shape else f"{list(row.ref_shape)} / {list(row.cand_shape)}"
        dtype = row.ref_dtype if row.ref_dtype == row.cand_dtype else f"{row.ref_dtype} / {row.cand_dtype}"
        table.add_row(
            row.ref_name if row.ref_name == row.cand_name else f"{row.ref_name} / {row.cand_name}",
            shape,
            dtype,
            "[green]True[/]" if row.passed else "[red]False[/]",
            f"{row.allclose_ratio:.2%}",
            "-" if math.isnan(row.cosine_similarity) else f"{row.cosine_similarity:.7f}",
            num(row.max_abs_diff),
            num(row.mean_abs_diff),
            num(row.max_rel_diff),
            f"{row.rtol:g} / {row.atol:g}",
        )
    return table


def print_compare(report: CompareReport, console: Console | None = None) -> None:
    """Print the compare report: workers, weight sync, the output table and the verdict."""
    console = console or make_console()
    for role, desc in (("pt", report.pt), ("ms", report.ms)):
        console.print(
            f"{role}: {desc.framework} {desc.framework_version} on {desc.device} ({desc.hostname}), "
            f"model {desc.model_spec or desc.model_class}, {desc.parameter_count} tensors / {desc.parameter_elements:,} values"
        )
    if report.weights is not None:
        w = report.weights
        extra = f"; {w.note()}" if w.note() else ""
        console.print(f"weights: {w.loaded} tensors streamed pt -> ms ({w.route}) in {w.seconds:.2f}s{extra}",
                      soft_wrap=True)  # one line in a log, however long: it is grepped
    shapes = ", ".join(f"{s.name} {list(s.shape)}:{s.dtype}" for s in report.inputs)
    console.print(f"inputs (seed {report.seed}): {shapes}")
    console.print(comparison_table("outputs (pt = reference, ms = candidate)", list(report.outputs)))
    for note in report.notes:
        console.print(f"note: {note}")
    for role, names in (("pt", report.pt_only_outputs), ("ms", report.ms_only_outputs)):
        if names:
            console.print(f"[red]outputs only the {role} net returned: {', '.join(names)}[/]")
    failing = [c.ref_name for c in report.outputs if not c.passed]
    one_sided = len(report.pt_only_outputs) + len(report.ms_only_outputs)
    if report.passed:
        console.print(f"[green]PASS[/]: {len(report.outputs)} output(s) within tolerance")
    elif failing:
        console.print(f"[red]FAIL[/]: {len(failing)} of {len(report.outputs)} output(s) differ: {', '.join(failing)}")
    else:
        console.print(f"[red]FAIL[/]: the {len(report.outputs)} output(s) both nets return agree, but {one_sided} "
                      "output(s) only one net returns (listed above)")
