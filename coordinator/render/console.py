"""The terminal every command prints to: a console for results, tables at their natural width, numbers."""

from __future__ import annotations

import math
import re
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
    plain = plain_table_lines(console, table)
    if plain is not None:  # what rich would print, character for character, at a fraction of its cost
        console.width = max(console.width, len(plain[0]))
        if not (console.record or console.quiet or console.is_jupyter) and getattr(console, "_buffer_index", 1) == 0:
            # nothing records, captures or silences it: straight out
            console.file.write("\n".join(plain) + "\n")
            console.file.flush()
        else:
            console.out("\n".join(plain), highlight=False)
        return
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        console.width = max(console.width, natural)
    console.print(table)


def num(value: float) -> str:
    """A number for a table cell: 4 significant digits, scientific outside [1e-3, 1e4), "-" for NaN."""
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.3e}"


# Text rich prints as it is: printable ASCII without markup ("[") or emoji codes (":"), so one character is one cell,
# and no space at either end (rich trims those when it aligns a cell).
_PLAIN_TEXT = re.compile(r"(?:[!-9;-Z\\-~](?:[ -9;-Z\\-~]*[!-9;-Z\\-~])?)?")


def _simple(table: Table) -> bool:
    """A table drawn the default way: padding 1 each side, header and edges shown, no lines, caption or footer."""
    return (table.box is not None and table.padding == (0, 1, 0, 1) and not table.collapse_padding and table.pad_edge
            and not table.expand and table.width is None and table.min_width is None and table.show_header
            and not table.show_footer and table.show_edge and not table.show_lines and not table.leading
            and table.caption is None and not table.row_styles and table.title_justify == "center" and table.rows
            and not any(row.end_section for row in table.rows))


def _plain_cells(table: Table) -> list[list[str]] | None:
    columns = []
    for column in table.columns:
        if column.width is not None or column.max_width is not None or column.ratio is not None:
            return None
        cells = [column.header, *column._cells]
        if not all(isinstance(cell, str) and _PLAIN_TEXT.fullmatch(cell) for cell in cells):
            return None
        columns.append(cells)
    return columns


def _aligned(text: str, width: int, justify: str) -> str:
    excess = width - len(text)
    left = excess // 2 if justify == "center" else excess if justify == "right" else 0
    return " " * left + text + " " * (excess - left)


def plain_table_lines(console: Console, table: Table) -> list[str] | None:
    """The lines rich draws for a table of plain text on a console without colours, at its natural width, or None
    where that is not certain (a terminal, styles shown, markup, wide characters, options not covered here)."""
    if console.is_terminal or console.color_system is not None or console.legacy_windows or \
            console.options.ascii_only or not _simple(table):
        return None
    title = table.title
    columns = _plain_cells(table)
    if columns is None or (title is not None and not (isinstance(title, str) and _PLAIN_TEXT.fullmatch(title))):
        return None
    if any(c.justify not in ("left", "center", "right") for c in table.columns):
        return None
    widths = [max(max(map(len, cells)), column.min_width or 0) for cells, column in zip(columns, table.columns)]
    box = table.box
    edge = sum(w + 2 for w in widths) + len(widths) + 1
    if title is not None and len(title) > edge:
        return None
    lines = [] if title is None else [_aligned(title, edge, "center")]
    lines.append(box.top_left + box.top_divider.join(box.top * (w + 2) for w in widths) + box.top_right)
    justify = [column.justify for column in table.columns]
    for index in range(len(columns[0])):
        left, middle, right = (box.head_left, box.head_vertical, box.head_right) if index == 0 else \
            (box.mid_left, box.mid_vertical, box.mid_right)
        cells = (_aligned(cells[index], w, j) for cells, w, j in zip(columns, widths, justify))
        lines.append(left + " " + f" {middle} ".join(cells) + " " + right)
        if index == 0:
            lines.append(box.head_row_left + box.head_row_cross.join(box.head_row_horizontal * (w + 2) for w in widths)
                         + box.head_row_right)
    lines.append(box.bottom_left + box.bottom_divider.join(box.bottom * (w + 2) for w in widths) + box.bottom_right)
    return lines
