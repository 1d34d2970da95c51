"""The command reference (docs/cli.md), generated from the click commands themselves.

``python -m coordinator.cli_reference`` rewrites docs/cli.md; ``--check`` exits 1 when it is out of date
(tests/test_cli_reference.py runs that). The workers' commands are read from their own ``--help``, in a
subprocess: the coordinator never imports a worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from coordinator.cli import main

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = 100


def _help(command: click.Command, name: str) -> str:
    context = click.Context(command, info_name=name, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(context)


def reference() -> str:
    """The whole reference as markdown: every msparity command, then both workers."""
    parts = ["# Command reference", "",
             "Generated from the commands' own help by `python -m coordinator.cli_reference`; a test checks it is "
             "current.", ""]
    parts += ["## msparity", "", "```text", _help(main, "msparity"), "```", ""]
    for name in sorted(main.commands):
        parts += [f"## msparity {name}", "", "```text", _help(main.commands[name], f"msparity {name}"), "```", ""]
    for role in ("pt", "ms"):
        text = subprocess.run([sys.executable, "-m", f"{role}_worker", "--help"], capture_output=True, text=True,
                              env={"COLUMNS": str(WIDTH), "PATH": ""}, cwd=REFERENCE.parent.parent,
                              check=True).stdout.rstrip()
        parts += [f"## msparity-{role}-worker", "", "```text", text, "```", ""]
    return "\n".join(parts)


def run(check: bool = False) -> int:
    text = reference()
    if check:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if current != text:
            print(f"{REFERENCE} is out of date: run python -m coordinator.cli_reference", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(run(check="--check" in sys.argv[1:]))
