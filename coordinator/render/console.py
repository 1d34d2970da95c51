"""The terminal every command prints to: a console for results, tables at their natural width, numbers."""

from __future__ import annotations

import math
import sys

from rich.console import Console
from rich.table import Table


def make_console() -> Console:
    """A console for results on stdout; wide enough for the tables when stdout is a file or pipe."""
    return Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def is_name(header: str) -> bool:
    """Whether a column holds names (tensor, module, file): never cut with "…", folded onto more lines instead."""
    return any(word in header.lower() for word in ("name", "module", "cell", "pytorch", "mindspore", "file"))


def column_style(header: str) -> dict:
    """add_column settings: a name column folds (min 16 wide) and is never cut, a number column does not wrap."""
    if is_name(header):
        return {"overflow": "fold", "no_wrap": False, "min_width": 16}
    return {"overflow": "fold", "no_wrap": True}


def print_unwrapped(console: Console, table: Table) -> None:
    """Print a table at its natural width when stdout is a file or pipe (no wrapped cells in logs)."""
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        console.width = max(console.width, natural)
    console.print(table)


def num(value: float) -> str:
    """A number for a table cell: 4 significant digits, scientific outside [1e-3, 1e4), "-" for NaN."""
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.3e}"
