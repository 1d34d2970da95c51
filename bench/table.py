"""The suite's table on stdout and its JSON list (``--json FILE``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.measure import Entry

ROLES = (("coord", "coord"), ("pt", "pt"), ("ms", "ms"))


def _s(x: float | None) -> str:
    return f"{x:.3f}" if x is not None else "n/a"


def _x(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "n/a"


def _ok(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "NO"


def _rss(e: Entry) -> str:
    ours = e.rss.get("ours", {})
    text = "/".join(f"{ours[r]:.0f}" if r in ours else "-" for r, _ in ROLES)
    ts = e.rss.get("ts", {}).get("ts")
    return text + (f"  TS {ts:.0f}" if ts is not None else "")


def print_table(entries: list[Entry]) -> None:
    name_w = max([9] + [len(e.name) for e in entries])
    header = (f"{'operation':{name_w}}  {'ours s':>8} {'bound s':>8} {'TS s':>8} {'ours/bnd':>8} {'TS/ours':>7}  "
              f"{'ok':3}  {'goal':44} peak RSS MiB ours coord/pt/ms  TS")
    print()
    print(header)
    print("-" * len(header))
    for e in entries:
        print(f"{e.name:{name_w}}  {_s(e.ours_s):>8} {_s(e.bound_s):>8} {_s(e.peer_s):>8} {_x(e.ratio):>8} "
              f"{_x(e.speedup):>7}  {_ok(e.ok):3}  {e.goal.text():44} {_rss(e)}")
    notes = list(dict.fromkeys((e.name.split(" ")[0], e.note) for e in entries if e.note))
    if notes:
        print()
        for op, note in notes:
            print(f"{op:4} {note}")


def write_json(entries: list[Entry], path: str) -> None:
    """The entries as a JSON list, written atomically."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=target.parent if str(target.parent) else ".")
    with os.fdopen(fd, "w") as out:
        json.dump([e.to_json() for e in entries], out, indent=1)
    os.replace(tmp, target)
