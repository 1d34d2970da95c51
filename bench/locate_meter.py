"""Measuring for bench/bench_locate.py: wall and CPU seconds of the coordinator and its workers, rounds, breakdown."""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path


class CpuMeter:
    """CPU seconds (user + system) of this process and of each worker it spawned, from /proc (Linux; else none).

    Less sensitive than wall time to other processes on the same cores, so it is printed beside it.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.pids: dict[int, str] = {}
        proc = Path("/proc")
        if not proc.is_dir():
            return
        for entry in proc.iterdir():
            fields = self._fields(entry.name) if entry.name.isdigit() else None
            if fields is None or int(fields[1]) != os.getpid():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            role = ("ms_bug" if "build_big_ms_bug" in cmd else "ms" if "ms_worker" in cmd else
                    "pt" if "pt_worker" in cmd else None)
            if role:
                self.pids[int(entry.name)] = role

    @staticmethod
    def _fields(pid: str) -> list[str] | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid ... utime(11) stime(12)

    def read(self) -> dict[str, float]:
        times = os.times()
        out = {"coordinator": times.user + times.system}
        for pid, role in self.pids.items():
            fields = self._fields(str(pid))
            if fields is not None:
                out[role] = (int(fields[11]) + int(fields[12])) / self.tick
        return out

    def measure(self, fn, settle: float = 0.0):
        """(wall seconds, CPU seconds by process, fn's result), after settle seconds of quiet (not counted).

        MindSpore's threads keep spinning for up to ~0.25 s after a request; the pause keeps that
        out of the next measurement (and off the cores it runs on).
        """
        time.sleep(settle)
        before = self.read()
        wall, result = _timed(fn)
        after = self.read()
        return wall, {k: after[k] - before.get(k, 0.0) for k in after}, result


@dataclass
class Round:
    wall: float
    cpu: dict
    report: object

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


@dataclass
class Runs:
    """The rounds of one contender: warm-up rounds first, then the timed ones."""

    name: str
    warmup: int
    rounds: list

    def timed(self) -> list[Round]:
        return self.rounds[self.warmup:] or self.rounds

    @property
    def first(self) -> float:
        return self.rounds[0].wall

    @property
    def best(self) -> float:
        return min(r.wall for r in self.timed())

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.timed())

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu_total for r in self.timed())

    @property
    def median_round(self) -> Round:
        """The (lower) median round by wall time, so its phases add up to a real run."""
        ordered = sorted(self.timed(), key=lambda r: r.wall)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def median_report(self):
        return self.median_round.report


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def side_breakdown(session, inputs, times: int, meter: CpuMeter,
                   settle: float) -> list[tuple[str, str, float, float]]:
    """Each side alone (the other idle): plain forward, then record with more and more of locate's work.

    Rows of (side, what, best wall seconds, best CPU seconds of that side's worker).
    """
    from proto.worker.interface import RecordOptions
    from proto.worker.module_records import SKETCH_SIZE

    pt, ms = session.pt, session.ms
    steps = [
        ("pt", "forward (plain, as compare)", lambda: pt.forward(inputs)),
        ("pt", "record: hooks + copies + stats, no sketch", lambda: pt.record(inputs, RecordOptions(0, 0, False))),
        ("pt", f"record: + {SKETCH_SIZE}-bucket sketches",
         lambda: pt.record(inputs, RecordOptions(SKETCH_SIZE, 0, False))),
        ("pt", "record: + float64 reference (as locate)",
         lambda: pt.record(inputs, RecordOptions(SKETCH_SIZE, 0, True))),
        ("ms", "forward (plain, as compare)", lambda: ms.forward(inputs)),
        ("ms", "record: hooks + copies + stats, no sketch", lambda: ms.record(inputs, RecordOptions(0, 0, False))),
        ("ms", f"record: + {SKETCH_SIZE}-bucket sketches (as locate)",
         lambda: ms.record(inputs, RecordOptions(SKETCH_SIZE, 0, False))),
    ]
    rows = []
    for side, what, fn in steps:
        measured = [meter.measure(fn, settle) for _ in range(max(1, times))]
        rows.append((side, what, min(m[0] for m in measured), min(m[1].get(side, math.nan) for m in measured)))
    return rows
