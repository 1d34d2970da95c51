"""NetDifferenceFinder's result table: TroubleShooter's columns for every output of every case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from coordinator.render.console import column_style, make_console, print_unwrapped
from coordinator.render.weight_report import value_cells

if TYPE_CHECKING:
    from coordinator.finder import FinderResult

RESULT_TITLE = "The comparison results of Net"
RESULT_FIELDS = ("PyTorch out", "MindSpore out", "result of allclose", "ratio of allclose", "cosine similarity",
                 "mean & max diffs")


def print_finder_rows(result: FinderResult) -> None:
    """One row per compared output (red when it differs or its shapes do); nothing when there are no rows."""
    if not result.rows:
        return
    table = Table(title=RESULT_TITLE)
    for field in (*RESULT_FIELDS, "max rel diff"):
        table.add_column(field, justify="center", **column_style(field))
    for row in result.rows:
        c = row.comparison
        if c is None:
            table.add_row(row.pt_name, row.ms_name, "Shape is inconsistent", "0.00%", "nan", "nan, nan", "nan",
                          style="red")
            continue
        table.add_row(row.pt_name, row.ms_name, *value_cells(c), f"{c.max_rel_diff:.3g}",
                      style=None if c.passed else "red")
    print_unwrapped(make_console(), table)
