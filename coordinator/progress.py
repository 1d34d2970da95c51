"""Progress of long work on stderr: a spinner saying what happens while workers start or nets run, bars with
tensors and bytes for weight streams, files for directory compares, steps for training.

Off unless the CLI turns it on (stderr a terminal, no ``-q``), so the Python API and every pipe stay silent and
stdout never carries it. The bars are transient: when the work ends they go, and the result is printed clean.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_progress = None  # the live rich Progress while the CLI has progress on


@contextlib.contextmanager
def shown(enabled: bool) -> Iterator[None]:
    """Show progress on stderr for the work inside (when enabled and stderr is a terminal)."""
    global _progress
    if not enabled or _progress is not None or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30),
                        MofNCompleteColumn(), TextColumn("{task.fields[extra]}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    with progress:
        _progress = progress
        try:
            yield
        finally:
            _progress = None


@contextlib.contextmanager
def activity(description: str) -> Iterator[None]:
    """A spinner with what is happening, for work that cannot be counted (a framework import, a forward)."""
    if _progress is None:
        yield
        return
    task = _progress.add_task(description, total=None, extra="")
    _progress.refresh()  # shown at once, however short the work
    try:
        yield
    finally:
        _progress.remove_task(task)


def counted(items: Iterable[T], description: str, total: int | None, unit: str = "",
            nbytes=None) -> Iterator[T]:
    """Yield items, advancing a bar of `total` (`unit` named after the count); nbytes(item) adds a byte count."""
    if _progress is None:
        yield from items
        return
    task = _progress.add_task(description, total=total, extra=unit)
    _progress.refresh()
    moved = 0
    try:
        for item in items:
            if nbytes is not None:
                moved += nbytes(item)
                _progress.update(task, extra=f"{unit} {_size(moved)}")
            _progress.advance(task)
            yield item
    finally:
        _progress.remove_task(task)


def callback(description: str, unit: str = ""):
    """A bar moved by calls: returns step(done, total) that moves it to `done` of `total` (a no-op when off)."""
    if _progress is None:
        return lambda done, total: None
    task = _progress.add_task(description, total=None, extra=unit)
    _progress.refresh()
    return lambda done, total: _progress.update(task, completed=done, total=total)


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"
