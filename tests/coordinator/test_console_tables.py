"""The plain drawing of a table (no terminal, no colours) is exactly what rich prints, or is not used."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from rich.console import Console
from rich.table import Table

from coordinator.dirs.dir_compare import compare_dirs
from coordinator.render.console import plain_table_lines, print_unwrapped
from coordinator.render.dir_report import dir_table


def _rich(table: Table) -> tuple[str, int]:
    console = Console(file=io.StringIO(), width=160, soft_wrap=False)
    console.width = max(console.width, console.measure(table, options=console.options.update_width(10_000)).maximum)
    console.print(table)
    return console.file.getvalue(), console.width


def _ours(table: Table) -> tuple[str, int]:
    console = Console(file=io.StringIO(), width=160, soft_wrap=False)
    assert plain_table_lines(console, table) is not None
    print_unwrapped(console, table)
    return console.file.getvalue(), console.width


def _random_table(seed: int) -> Table:
    r = random.Random(seed)
    alphabet = "abXY019.,-_()/%& "

    def text(most):
        return "".join(r.choice(alphabet) for _ in range(r.randint(0, most))).strip()

    table = Table(title=r.choice([None, "T", "x" * r.randint(1, 90)]))
    columns = r.randint(1, 6)
    for _ in range(columns):
        extra = r.choice([{}, {"min_width": r.randint(1, 20)}, {"overflow": "fold", "no_wrap": True}])
        table.add_column(text(14), justify=r.choice(["left", "center", "right"]), **extra)
    for _ in range(r.randint(1, 6)):
        table.add_row(*[text(30) for _ in range(columns)], style=r.choice([None, "red"]))
    return table


@pytest.mark.parametrize("seed", range(60))
def test_random_plain_tables_match_rich(seed):
    table = _random_table(seed)
    if plain_table_lines(Console(file=io.StringIO()), table) is None:  # only a title wider than the table (it wraps)
        assert len(table.title) > len(_rich(table)[0].splitlines()[1])
        return
    assert _ours(table) == _rich(_random_table(seed))


def test_dir_table_matches_rich(tmp_path):
    rng = np.random.default_rng(0)
    for folder, shift in (("a", 0.0), ("b", 1e-3)):
        (tmp_path / folder).mkdir()
        for i in range(12):
            x = rng.standard_normal((i + 1, 3)).astype(np.float32) if folder == "a" else np.load(tmp_path / "a" / f"{i}_t.npy")
            np.save(tmp_path / folder / f"{i}_t.npy", x + np.float32(shift * (i % 2)))
    np.save(tmp_path / "a" / "only_a.npy", np.zeros(2))
    result = compare_dirs(tmp_path / "a", tmp_path / "b")
    for shape in (False, True):
        assert _ours(dir_table(result, shape)) == _rich(dir_table(result, shape))


@pytest.mark.parametrize("cell", ["[red]x[/red]", ":smile:", "naïve", "漢字", " padded", "two\nlines", "tab\there"])
def test_text_rich_would_change_is_left_to_rich(cell):
    table = Table(title="t")
    table.add_column("name")
    table.add_row(cell)
    console = Console(file=io.StringIO(), width=160, soft_wrap=False)
    assert plain_table_lines(console, table) is None


def test_a_terminal_or_colours_are_left_to_rich():
    table = Table(title="t")
    table.add_column("name")
    table.add_row("x")
    assert plain_table_lines(Console(file=io.StringIO(), force_terminal=True), table) is None
    assert plain_table_lines(Console(file=io.StringIO(), color_system="truecolor", force_terminal=False), table) is None
    wide = Table(title="a title far wider than the table itself")
    wide.add_column("n")
    wide.add_row("x")
    assert plain_table_lines(Console(file=io.StringIO()), wide) is None


def test_a_recording_or_capturing_console_still_gets_the_table():
    table = _random_table(3)
    expected = _rich(_random_table(3))[0]
    recording = Console(file=io.StringIO(), width=160, soft_wrap=False, record=True)
    print_unwrapped(recording, table)
    assert recording.file.getvalue() == expected and recording.export_text() == expected
    capturing = Console(file=io.StringIO(), width=160, soft_wrap=False)
    with capturing.capture() as captured:
        print_unwrapped(capturing, _random_table(3))
    assert captured.get() == expected and capturing.file.getvalue() == ""
