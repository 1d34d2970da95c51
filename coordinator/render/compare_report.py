"""Render results: rich tables for people, versioned JSON for programs. Files are written atomically."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from coordinator.compare import REPORT_SCHEMA, CompareReport
from coordinator.metrics import TensorComparison
from proto.formats.atomic import atomic_binary


def _finite(value):
    """JSON has no NaN/inf: NaN -> null, +-inf -> "inf"/"-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_atomic(path: Path, text: str) -> None:
    """Write text to path atomically (complete or not at all)."""
    with atomic_binary(path) as handle:
        handle.write(text.encode("utf-8"))


def compare_to_dict(report: CompareReport) -> dict:
    """The JSON form of a compare report (schema msparity.report/1)."""
    return _finite(
        {
            "schema": REPORT_SCHEMA,
            "kind": "compare",
            "passed": report.passed,
            "seed": report.seed,
            "inputs": [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape)} for s in report.inputs],
            "outputs": [c.to_dict() for c in report.outputs],
            "pt_only_outputs": list(report.pt_only_outputs),
            "ms_only_outputs": list(report.ms_only_outputs),
            "workers": {
                "pt": _description_dict(report.pt),
                "ms": _description_dict(report.ms),
            },
            "weights": report.weights.to_dict() if report.weights else None,
            "seconds": report.seconds,
        }
    )


def weights_to_dict(result) -> dict:
    """The JSON form of a weight-file comparison."""
    return _finite({
        "schema": REPORT_SCHEMA,
        "kind": "compare-ckpt",
        "passed": result.passed,
        "shapes": [dataclasses.asdict(r) for r in result.shape_rows],
        "values": [c.to_dict() for c in result.values],
    })


def weight_map_to_dict(weight_map, listing, map_path: Path) -> dict:
    """The JSON form of a written weight map: one row per torch tensor, with its owner and transform."""
    specs = {p.name: p for p in listing.parameters}
    rows = []
    for pt_name, ms_name in weight_map.name_map.items():
        spec = specs.get(pt_name)
        rows.append({"pt": pt_name, "ms": ms_name, "transform": weight_map.value_map.get(pt_name),
                     "shape": list(spec.shape) if spec else None, "dtype": spec.dtype if spec else None,
                     "module_type": spec.module_type if spec else None})
    return {"schema": REPORT_SCHEMA, "kind": "weight-map", "passed": True, "out": str(map_path), "tensors": rows}


def _description_dict(description) -> dict:
    data = dataclasses.asdict(description)
    data["example_inputs"] = [{"name": s["name"], "dtype": s["dtype"], "shape": list(s["shape"])}
                              for s in data["example_inputs"]]
    return data


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _num(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.3e}"


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
            _num(row.max_abs_diff),
            _num(row.mean_abs_diff),
            _num(row.max_rel_diff),
            f"{row.rtol:g} / {row.atol:g}",
        )
    return table


def make_console() -> Console:
    """A console for results on stdout; wide enough for the tables when stdout is a file or pipe."""
    return Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def print_unwrapped(console: Console, table: Table) -> None:
    """Print a table at its natural width when stdout is a file or pipe (no wrapped cells in logs)."""
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        console.width = max(console.width, natural)
    console.print(table)


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
        console.print(f"weights: {w.loaded} tensors streamed pt -> ms in {w.seconds:.2f}s{extra}")
    shapes = ", ".join(f"{s.name} {list(s.shape)}:{s.dtype}" for s in report.inputs)
    console.print(f"inputs (seed {report.seed}): {shapes}")
    console.print(comparison_table("outputs (pt = reference, ms = candidate)", list(report.outputs)))
    for role, names in (("pt", report.pt_only_outputs), ("ms", report.ms_only_outputs)):
        if names:
            console.print(f"[red]outputs only the {role} net returned: {', '.join(names)}[/]")
    failing = [c.ref_name for c in report.outputs if not c.passed]
    if report.passed:
        console.print(f"[green]PASS[/]: {len(report.outputs)} output(s) within tolerance")
    else:
        console.print(f"[red]FAIL[/]: {len(failing)} of {len(report.outputs)} output(s) differ: {', '.join(failing)}")
