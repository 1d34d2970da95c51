"""Compare two directories of saved tensors pair by pair (TroubleShooter's compare_npy_dir family).

Both sides stream (from disk or from a worker) in a background thread each while two threads
compute metrics, so I/O overlaps compute and both cores work. Unpaired files are listed, never
dropped; a run with no pair to compare is an error, not a pass.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from coordinator import metrics
from coordinator.dirs.name_maps import STRATEGIES, NameMap, end_key, front_end_key, sorted_entries
from coordinator.dirs.tensor_dirs import LocalDir, TensorDir, open_dir, read_ahead
from proto import transport
from proto.codec import NamedArray
from proto.errors import MsparityError, UsageError
from proto.formats.npy_files import NPY_SUFFIX, NpyEntry, NpyFileError

log = logging.getLogger("msparity")
IN_FLIGHT = 4  # pairs being compared at once
REUSED_BUFFER_BYTES = 64 << 20  # files up to this size are read into each thread's two reused buffers
# Threads reading and comparing local pairs. Measured on the 2-vCPU bench machine (P3, 300 files): one thread
# 0.28 s, two 0.34 s (the vCPUs share a core; GIL hand-offs between short numpy calls cost more than they gain).
LOCAL_THREADS = 1


class NothingToCompare(MsparityError):
    """No file of one directory has a partner in the other."""


@dataclass(frozen=True)
class PairRow:
    """One row: a file pair, or a file with no partner (the other side None)."""

    orig_name: str | None
    target_name: str | None
    orig: NpyEntry | None
    target: NpyEntry | None
    comparison: metrics.TensorComparison | None

    @property
    def passed(self) -> bool:
        return self.comparison is not None and self.comparison.passed

    @property
    def status(self) -> str:
        if self.orig is None:
            return "only in target"
        if self.target is None:
            return "only in orig"
        if self.orig.shape != self.target.shape:
            return "shape mismatch"
        return "equal" if self.passed else "different"

    def to_dict(self) -> dict:
        def entry(e):
            return None if e is None else {"name": e.name, "dtype": e.dtype, "shape": list(e.shape)}

        return {"orig": entry(self.orig), "target": entry(self.target), "status": self.status,
                "passed": self.passed, "metrics": self.comparison.to_dict() if self.comparison is not None else None}


@dataclass(frozen=True)
class DirComparison:
    """The result of comparing two directories: one row per pair or unpaired file, in map order."""

    orig_dir: str
    target_dir: str
    strategy: str
    rtol: float
    atol: float
    equal_nan: bool
    rows: tuple[PairRow, ...]
    seconds: float

    @property
    def compared(self) -> int:
        return sum(1 for r in self.rows if r.comparison is not None)

    @property
    def unpaired(self) -> tuple[PairRow, ...]:
        return tuple(r for r in self.rows if r.orig is None or r.target is None)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def __bool__(self) -> bool:
        return self.passed


def _npy_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = os.fspath(name)
    return name if name.endswith(NPY_SUFFIX) else name + NPY_SUFFIX


def _checked_map(name_map, orig: dict[str, NpyEntry], target: dict[str, NpyEntry], labels) -> NameMap:
    pairs: NameMap = []
    seen: set = set()
    for index, pair in enumerate(name_map):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise UsageError(f"name map entry {index} is {pair!r}; expected a pair [orig name, target name]")
        o, t = _npy_name(pair[0]), _npy_name(pair[1])
        if (o, t) in seen:
            raise UsageError(f"name map entry {index} repeats the pair [{pair[0]!r}, {pair[1]!r}]; list each pair once")
        seen.add((o, t))
        for name, entries, label in ((o, orig, labels[0]), (t, target, labels[1])):
            if name is not None and name not in entries:
                raise NpyFileError(f"{label}: name map entry {index} names {name!r}, which is not a .npy file there")
        pairs.append((o, t))
    return pairs


def _compare_pair(o: NamedArray, t: NamedArray, rtol: float, atol: float, equal_nan: bool):
    if o.array.dtype.kind in "biu" or t.array.dtype.kind in "biu":
        # integers and bools compare as numbers, like TroubleShooter (cast to float)
        o = NamedArray(o.name, o.array.astype("float64"), "float64")
        t = NamedArray(t.name, t.array.astype("float64"), "float64")
    return metrics.compare_tensors(o, t, rtol, atol, equal_nan)


def compare_dirs(orig, target, *, rtol: float = 1e-4, atol: float = 1e-4, equal_nan: bool = False,
                 strategy: str = "name", name_map_list=None, security: transport.Security = transport.Security(),
                 progress=None) -> DirComparison:
    """Compare every file pair of two tensor directories (local paths, served dirs or TensorDirs)."""
    if rtol < 0 or atol < 0:
        raise UsageError(f"tolerances must be non-negative, got rtol={rtol} atol={atol}")
    if strategy not in (*STRATEGIES, "list") and name_map_list is None:
        raise UsageError(f"unknown name map strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    orig_dir = open_dir(orig, security=security, role="orig")
    target_dir = open_dir(target, security=security, role="target")
    start = time.perf_counter()
    try:
        key = end_key if strategy == "list" else front_end_key
        orig_entries, target_entries = sorted_entries(orig_dir, key), sorted_entries(target_dir, key)
        by_name = ({e.name: e for e in orig_entries}, {e.name: e for e in target_entries})
        if name_map_list is not None:
            pairs = _checked_map(name_map_list, *by_name, (orig_dir.label, target_dir.label))
            strategy = "given"
        else:
            pairs = STRATEGIES["number" if strategy == "list" else strategy](orig_entries, target_entries)
        rows = _run_pairs(orig_dir, target_dir, pairs, by_name, rtol, atol, equal_nan, progress)
    finally:
        orig_dir.close()
        target_dir.close()
    if not any(r.comparison is not None for r in rows):
        raise NothingToCompare(
            f"no file of {orig_dir.label} has a partner in {target_dir.label} ({len(orig_entries)} vs "
            f"{len(target_entries)} files, paired by {strategy}); try another --map or give a --name-map")
    return DirComparison(orig_dir.label, target_dir.label, strategy, rtol, atol, equal_nan, tuple(rows),
                         time.perf_counter() - start)


def _run_pairs(orig_dir: TensorDir, target_dir: TensorDir, pairs: NameMap, by_name, rtol, atol, equal_nan,
               progress) -> list[PairRow]:
    orig_entries, target_entries = by_name
    both = [(o, t) for o, t in pairs if o is not None and t is not None
            and orig_entries[o].shape == target_entries[t].shape]
    if isinstance(orig_dir, LocalDir) and isinstance(target_dir, LocalDir):
        largest = max((max(orig_entries[o].nbytes, target_entries[t].nbytes) for o, t in both), default=0)
        done = _compare_local(orig_dir, target_dir, both, rtol, atol, equal_nan, progress, largest)
    else:
        done = _compare_streams(orig_dir, target_dir, both, rtol, atol, equal_nan, progress)
    return _rows(pairs, by_name, done, rtol, atol)


def _compare_local(orig_dir: LocalDir, target_dir: LocalDir, both: NameMap, rtol, atol, equal_nan, progress,
                   largest: int) -> dict[tuple[str, str], metrics.TensorComparison]:
    """LOCAL_THREADS threads, each reading a pair and comparing it (no hand-off between a reader and a comparer).
    Each thread reads into the same two buffers pair after pair (no fresh pages to fault in, still in cache)."""
    size = min(largest, REUSED_BUFFER_BYTES)
    buffers: dict[int, tuple[bytearray, bytearray]] = {}

    def one(pair):
        mine = buffers.get(threading.get_ident()) or buffers.setdefault(threading.get_ident(),
                                                                        (bytearray(size), bytearray(size)))
        o, t = orig_dir.load(pair[0], mine[0]), target_dir.load(pair[1], mine[1])
        return _compare_pair(o, t, rtol, atol, equal_nan)  # the comparison keeps no array: the buffers are free

    done: dict[tuple[str, str], metrics.TensorComparison] = {}
    pool = ThreadPoolExecutor(max_workers=LOCAL_THREADS, thread_name_prefix="msparity-compare")
    try:
        futures = [pool.submit(one, pair) for pair in both]
        for pair, future in zip(both, futures):
            done[pair] = future.result()  # in map order, so the first bad file is the one reported
            if progress:
                progress(len(done), len(both))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return done


def _compare_streams(orig_dir: TensorDir, target_dir: TensorDir, both: NameMap, rtol, atol, equal_nan,
                     progress) -> dict[tuple[str, str], metrics.TensorComparison]:
    """Each side streams in its own thread (a served directory arrives over gRPC) while two threads compare."""
    orig_stream = read_ahead(orig_dir.stream([o for o, _ in both]))
    target_stream = read_ahead(target_dir.stream([t for _, t in both]))
    done: dict[tuple[str, str], metrics.TensorComparison] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="msparity-compare") as pool:
        pending: deque = deque()
        for o, t in both:
            o_array, t_array = next(orig_stream), next(target_stream)
            pending.append(((o, t), pool.submit(_compare_pair, o_array, t_array, rtol, atol, equal_nan)))
            while len(pending) > IN_FLIGHT:
                pair, future = pending.popleft()
                done[pair] = future.result()
                if progress:
                    progress(len(done), len(both))
        for pair, future in pending:
            done[pair] = future.result()
            if progress:
                progress(len(done), len(both))
    return done


def _rows(pairs: NameMap, by_name, done, rtol, atol) -> list[PairRow]:
    orig_entries, target_entries = by_name
    rows = []
    for o, t in pairs:
        o_entry = orig_entries.get(o) if o is not None else None
        t_entry = target_entries.get(t) if t is not None else None
        comparison = done.get((o, t))
        if comparison is None and o_entry is not None and t_entry is not None:  # shapes differ
            comparison = metrics.TensorComparison(
                o, t, o_entry.shape, t_entry.shape, o_entry.dtype, t_entry.dtype, rtol, atol, passed=False,
                allclose_ratio=0.0, cosine_similarity=float("nan"), max_abs_diff=float("nan"),
                mean_abs_diff=float("nan"), max_rel_diff=float("nan"),
                mismatched=max(math.prod(o_entry.shape), math.prod(t_entry.shape)), total=math.prod(o_entry.shape),
                note=f"shape {list(o_entry.shape)} vs {list(t_entry.shape)}")
        rows.append(PairRow(o, t, o_entry, t_entry, comparison))
    return rows

