"""Render a directory comparison: TroubleShooter's table (plus max relative diff and dtypes), CSV, JSON."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from coordinator.render.console import column_style, make_console, print_unwrapped
from coordinator.render.report_io import REPORT_SCHEMA, finite, write_atomic, write_json
from coordinator.render.weight_report import value_cells

if TYPE_CHECKING:
    from coordinator.dirs.dir_compare import DirComparison, PairRow

TITLE = "The list of comparison results"
NAME_FIELDS = ("orig array name", "target array name")
SHAPE_FIELDS = ("shape of orig", "shape of target")
VALUE_FIELDS = ("result of allclose", "ratio of allclose", "cosine similarity", "mean & max diffs")
EXTRA_FIELDS = ("max rel diff", "dtype")


def _cells(row: PairRow, compare_shape: bool) -> list[str]:
    c = row.comparison
    names = [str(row.orig_name), str(row.target_name)]
    shapes = [str(row.orig.shape) if row.orig else "None", str(row.target.shape) if row.target else "None"]
    if c is None:
        values = ["False", "0.00%", "nan", "nan, nan", "nan"]
    else:
        values = [*value_cells(c), f"{c.max_rel_diff:.3g}"]
    dtypes = [row.orig.dtype if row.orig else "", row.target.dtype if row.target else ""]
    dtype = dtypes[0] if dtypes[0] == dtypes[1] else " / ".join(d or "None" for d in dtypes)
    return names + (shapes if compare_shape else []) + values + [dtype]


def fields(compare_shape: bool) -> list[str]:
    return [*NAME_FIELDS, *(SHAPE_FIELDS if compare_shape else ()), *VALUE_FIELDS, *EXTRA_FIELDS]


SHOWN_ROWS = 50  # the CLI's table beyond this many pairs: the failing and unpaired ones (--all for every row)


def dir_table(result: DirComparison, compare_shape: bool = False, title: str = TITLE, rows=None) -> Table:
    """TroubleShooter's columns (shapes optional) plus max relative diff and dtype; failing rows in red."""
    table = Table(title=title)
    for field in fields(compare_shape):
        table.add_column(field, justify="center", **column_style(field))
    for row in result.rows if rows is None else rows:
        table.add_row(*_cells(row, compare_shape), style=None if row.passed else "red")
    return table


def summary_line(result: DirComparison) -> str:
    failed = sum(1 for r in result.rows if r.comparison is not None and not r.passed)
    unpaired = len(result.unpaired)
    verdict = "PASS" if result.passed else "FAIL"
    parts = [f"{result.compared} pairs compared ({result.strategy} map, rtol {result.rtol:g}, atol {result.atol:g})",
             f"{failed} differ", f"{unpaired} files unpaired"]
    return f"{verdict}: " + ", ".join(parts) + f" in {result.seconds:.2f}s"


def print_dir_comparison(result: DirComparison, compare_shape: bool = False, title: str = TITLE,
                         console=None, show_all: bool = True) -> None:
    """Print the directories, the table and the verdict line. Without ``show_all``, a comparison of more than
    SHOWN_ROWS pairs shows only the rows that failed or lack a partner (drawing 10,000 rows costs more than
    comparing them), and says so."""
    console = console or make_console()
    console.print(f"orig dir: {result.orig_dir}\ntarget dir: {result.target_dir}")
    rows = None
    if not show_all and len(result.rows) > SHOWN_ROWS:
        rows = [r for r in result.rows if not r.passed][:SHOWN_ROWS]
    if rows is None or rows:
        print_unwrapped(console, dir_table(result, compare_shape, title, rows))
    if rows is not None:
        bad = sum(1 for r in result.rows if not r.passed)
        console.print(f"showing {len(rows)} of {len(result.rows)} rows: "
                      + (f"the first {len(rows)} of {bad} that differ or lack a partner" if bad else "every pair agrees")
                      + "; --all prints every row, --csv / --json write them")
    console.print(summary_line(result))


def write_csv(path: Path, result: DirComparison, compare_shape: bool = False) -> None:
    """The table as CSV (every field quoted, like TroubleShooter's), written atomically."""
    text = io.StringIO()
    writer = csv.writer(text, dialect="unix", quoting=csv.QUOTE_ALL)
    writer.writerow(fields(compare_shape))
    for row in result.rows:
        writer.writerow(_cells(row, compare_shape))
    write_atomic(Path(path), text.getvalue())


def dir_comparison_to_dict(result: DirComparison, kind: str = "compare-dirs") -> dict:
    """The JSON form (schema msparity.report/1)."""
    return finite({
        "schema": REPORT_SCHEMA, "kind": kind, "passed": result.passed,
        "orig_dir": result.orig_dir, "target_dir": result.target_dir, "map": result.strategy,
        "rtol": result.rtol, "atol": result.atol, "equal_nan": result.equal_nan,
        "compared": result.compared, "unpaired": len(result.unpaired), "seconds": {"compare": round(result.seconds, 4)},
        "pairs": [r.to_dict() for r in result.rows],
    })


def write_dir_json(path: Path, result: DirComparison, kind: str = "compare-dirs") -> None:
    write_json(Path(path), dir_comparison_to_dict(result, kind))
