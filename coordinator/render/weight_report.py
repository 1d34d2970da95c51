"""TroubleShooter's weight tables (conversion, shape and value comparison), rendered with rich; their JSON forms."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from rich.table import Table

from coordinator.render.console import make_console, print_unwrapped
from coordinator.render.report_io import REPORT_SCHEMA, finite
from proto.weights.conversion import CONVERSION_COLUMNS


def _table(title: str, columns) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="center", overflow="fold")
    return table


def print_conversion(rows, console=None) -> None:
    """The list of conversion result: one row per torch tensor, in file order."""
    table = _table("The list of conversion result", CONVERSION_COLUMNS)
    for row in rows:
        table.add_row(*row.cells())
    print_unwrapped(console or make_console(), table)


def trunc(value: float, digits: int) -> float:
    """Truncate toward zero like TroubleShooter (91.666% shows as 91.66%, 0.999999 as 0.99999)."""
    return int(value * 10**digits) / 10**digits if math.isfinite(value) else value


def value_cells(c) -> list[str]:
    """TroubleShooter's value columns for one comparison: allclose, ratio, cosine, "mean, max" diffs."""
    allclose = "Shape is inconsistent" if c.ref_shape != c.cand_shape else str(c.passed)
    return [allclose, f"{trunc(c.allclose_ratio, 4):.2%}", f"{trunc(c.cosine_similarity, 5):.5f}",
            f"{trunc(c.mean_abs_diff, 5):.5f}, {trunc(c.max_abs_diff, 5):.5f}"]


def print_weights_comparison(result, print_level: int, shape_fields, value_fields, title, console=None) -> None:
    """Shape table then value table; print_level 2 shows only rows that differ."""
    console = console or make_console()
    shapes = _table("The list of comparison results for shapes", shape_fields)
    for row in result.shape_rows:
        if print_level == 2 and row.shapes_equal is True:
            continue
        shapes.add_row(str(row.orig_name), str(row.target_name), str(row.shapes_equal),
                       str(row.orig_shape), str(row.target_shape))
    print_unwrapped(console, shapes)
    if not result.values:
        return
    values = _table(title, value_fields)
    for c in result.values:
        if print_level == 2 and c.passed:
            continue
        values.add_row(c.ref_name, c.cand_name, *value_cells(c))
    print_unwrapped(console, values)


def weights_to_dict(result) -> dict:
    """The JSON form of a weight-file comparison."""
    return finite({
        "schema": REPORT_SCHEMA,
        "kind": "compare-ckpt",
        "passed": result.passed,
        "shapes": [dataclasses.asdict(r) for r in result.shape_rows],
        "values": [c.to_dict() for c in result.values],
    })


def weight_map_to_dict(weight_map, listing, map_path: Path, found_by: dict[str, str] | None = None,
                       how: str = "") -> dict:
    """The JSON form of a written weight map: one row per torch tensor, with its owner, transform and how it
    was found ("name", "rules", "structure"; null: the matcher left it unpaired, it keeps its rule name)."""
    specs = {p.name: p for p in listing.parameters}
    found_by = found_by if found_by is not None else {name: "rules" for name in weight_map.name_map}
    rows = []
    for pt_name, ms_name in weight_map.name_map.items():
        spec = specs.get(pt_name)
        rows.append({"pt": pt_name, "ms": ms_name, "transform": weight_map.value_map.get(pt_name),
                     "found_by": found_by.get(pt_name), "shape": list(spec.shape) if spec else None,
                     "dtype": spec.dtype if spec else None, "module_type": spec.module_type if spec else None})
    return {"schema": REPORT_SCHEMA, "kind": "weight-map", "passed": True, "out": str(map_path), "how": how,
            "tensors": rows}


def convert_to_dict(rows, out_path: Path) -> dict:
    """The JSON form of a conversion: one row per tensor, as the conversion table shows it."""
    return {"schema": REPORT_SCHEMA, "kind": "convert", "passed": True, "out": str(out_path),
            "tensors": [dataclasses.asdict(r) for r in rows]}
