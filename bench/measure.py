"""Rounds, medians and the suite's entries: each contender once a round, interleaved, medians of the timed rounds."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.procs import peak_mib, reset_peak

SETTLE_S = 0.3  # MindSpore's threads spin a little after a call: a pause (not counted) keeps it off the next one


@dataclass
class Sample:
    seconds: float
    rss: dict  # role -> peak RSS MiB during the call (coord, pt, ms, ts, bound)
    result: object = None


def on_host(host, function: str, workers=(), rss_role: str = "coord", **kwargs) -> Callable[[], Sample]:
    """A contender: one call on a warm host; the host's and the workers' peak RSS during it.

    A call that returns {"s": seconds, ...} times itself (a bound made of parts); otherwise the host's wall time counts.
    """
    def run() -> Sample:
        for worker in workers:
            reset_peak(worker.pid)
        reply = host.call(function, **kwargs)
        rss = {rss_role: reply["peak_mib"], **{w.role: peak_mib(w.pid) for w in workers}}
        result = reply["result"]
        seconds = result["s"] if isinstance(result, dict) and "s" in result else reply["s"]
        return Sample(seconds, rss, result)

    return run


def timed(fn: Callable[[], tuple[float, float]], rss_role: str) -> Callable[[], Sample]:
    """A contender that measures itself as (seconds, peak RSS MiB): a fresh process."""
    def run() -> Sample:
        seconds, peak = fn()
        return Sample(seconds, {rss_role: peak})

    return run


def interleave(label: str, contenders: dict[str, Callable[[], Sample]], rounds: int,
               warmup: int = 0) -> dict[str, list[Sample]]:
    """Every contender once a round, in the same order each round; each round printed as it ends.

    ``warmup`` rounds come first and are dropped (a warm contender's first call pays one-time costs:
    MindSpore's first kernels, channels connecting)."""
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    for i in range(warmup + rounds):
        for name, run in contenders.items():
            os.sync()  # what the last contender left for the kernel to write (TS and the bounds do not fsync)
            time.sleep(SETTLE_S)
            samples[name].append(run())
        kind = "warm-up" if i < warmup else f"round {i + 1 - warmup}/{rounds}"
        print(f"  {label} {kind}: " + "  ".join(f"{name} {s[-1].seconds:.3f}s" for name, s in samples.items()),
              flush=True)
    return {name: s[warmup:] for name, s in samples.items()}


def median(samples: list[Sample] | None) -> float | None:
    return statistics.median(s.seconds for s in samples) if samples else None


def peak(samples: list[Sample] | None) -> dict:
    """Per role, the largest peak RSS over the rounds."""
    out: dict = {}
    for s in samples or []:
        for role, mib in s.rss.items():
            out[role] = max(out.get(role, 0.0), mib)
    return out


@dataclass
class Goal:
    """ours / bound <= max_ratio, peer / ours >= min_speedup (strictly above when strict); extra: a named check."""

    max_ratio: float | None = None
    min_speedup: float | None = None
    strict: bool = False
    extra: tuple[str, bool] | None = None

    def text(self) -> str:
        parts = [f"<= {self.max_ratio:g}x bound"] if self.max_ratio is not None else []
        if self.min_speedup is not None:
            parts.append(f"TS/ours {'>' if self.strict else '>='} {self.min_speedup:g}")
        if self.extra is not None:
            parts.append(self.extra[0])
        return ", ".join(parts)

    def met(self, ours: float, bound: float | None, peer: float | None) -> bool | None:
        """True / False; None when a part of it could not be measured (TroubleShooter missing)."""
        checks = []
        if self.max_ratio is not None:
            checks.append(bound is not None and ours / bound <= self.max_ratio)
        if self.min_speedup is not None:
            if peer is None:
                return None
            speedup = peer / ours
            checks.append(speedup > self.min_speedup if self.strict else speedup >= self.min_speedup)
        if self.extra is not None:
            checks.append(self.extra[1])
        return all(checks)


@dataclass
class Entry:
    name: str
    ours_s: float
    bound_s: float | None
    peer_s: float | None
    goal: Goal
    rss: dict = field(default_factory=dict)  # contender -> role -> MiB
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ours_s / self.bound_s if self.bound_s else None

    @property
    def speedup(self) -> float | None:
        return self.peer_s / self.ours_s if self.peer_s is not None else None

    @property
    def ok(self) -> bool | None:
        return self.goal.met(self.ours_s, self.bound_s, self.peer_s)

    def to_json(self) -> dict:
        def r(x):
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 4)

        return {"name": self.name, "ours_s": r(self.ours_s), "bound_s": r(self.bound_s), "ratio": r(self.ratio),
                "peer_s": r(self.peer_s), "goal": self.goal.text(), "ok": self.ok,
                "rss_mib": {k: {role: round(v) for role, v in d.items()} for k, d in self.rss.items()},
                "note": self.note}


def entry(name: str, samples: dict, ours: str, bound: str | None, peer: str | None, goal: Goal,
          note: str = "") -> Entry:
    """The entry of one operation from its contenders' rounds (names as keys of samples)."""
    rss = {"ours": peak(samples[ours])}
    if peer and samples.get(peer):
        rss["ts"] = peak(samples[peer])
    return Entry(name, median(samples[ours]), median(samples.get(bound)) if bound else None,
                 median(samples.get(peer)) if peer else None, goal, rss, note)
