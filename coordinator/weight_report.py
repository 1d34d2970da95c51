"""TroubleShooter's weight tables (conversion, shape and value comparison), rendered with rich."""

from __future__ import annotations

from rich.table import Table

from coordinator.report import make_console
from proto.conversion import CONVERSION_COLUMNS


def _table(title: str, columns) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="center")
    return table


def print_conversion(rows, console=None) -> None:
    """The list of conversion result: one row per torch tensor, in file order."""
    table = _table("The list of conversion result", CONVERSION_COLUMNS)
    for row in rows:
        table.add_row(*row.cells())
    (console or make_console()).print(table)


def _ratio(value: float) -> str:
    return f"{int(value * 10000) / 100:.2f}%"  # truncated like TroubleShooter (91.666% -> 91.66%)


def print_weights_comparison(result, print_level: int, shape_fields, value_fields, title, console=None) -> None:
    """Shape table then value table; print_level 2 shows only rows that differ."""
    console = console or make_console()
    shapes = _table("The list of comparison results for shapes", shape_fields)
    for row in result.shape_rows:
        if print_level == 2 and row.shapes_equal is True:
            continue
        shapes.add_row(str(row.orig_name), str(row.target_name), str(row.shapes_equal),
                       str(row.orig_shape), str(row.target_shape))
    console.print(shapes)
    if not result.values:
        return
    values = _table(title, value_fields)
    for c in result.values:
        if print_level == 2 and c.passed:
            continue
        allclose = "Shape is inconsistent" if c.ref_shape != c.cand_shape else str(c.passed)
        values.add_row(c.ref_name, c.cand_name, allclose, _ratio(c.allclose_ratio), f"{c.cosine_similarity:.5f}",
                       f"{c.mean_abs_diff:.5f}, {c.max_abs_diff:.5f}")
    console.print(values)
