"""Pure-numpy comparison of a reference tensor (PyTorch) with a candidate (MindSpore).

allclose follows numpy: ``|cand - ref| <= atol + rtol * |ref|``; relative error is measured
against the reference. Large tensors are processed in blocks (bounded memory, two threads).
Comparing nothing is an error, never a pass.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from proto.codec import NamedArray
from proto.errors import UsageError

BLOCK_ELEMENTS = 1 << 22  # elements per thread task
CHUNK_ELEMENTS = 1 << 15  # elements per pass: a float64 chunk and its scratch stay in the CPU cache
# OpenBLAS splits a dot product over more than 10,000 elements across threads that then spin, taking the other
# core from the thread comparing the next file; pieces below that size run on the calling thread.
_DOT_PIECE = 8192
# |cand - ref| histogram of a failing tensor: bin 0 counts exact matches, bin i (1..13) the differences in
# (EDGES[i-1], EDGES[i]], the last bin everything above 1e3 (infinities and NaN against a number included).
DIFF_HISTOGRAM_EDGES = (0.0, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="msparity-metrics")

# wire dtype -> (rtol, atol) used when the caller gives neither; integers and bools compare exactly.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1e-4, 1e-5),
    "float64": (1e-7, 1e-7),
    "complex64": (1e-4, 1e-5),
    "complex128": (1e-7, 1e-7),
}


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


def resolve_tolerance(dtype: str, rtol: float | None, atol: float | None) -> Tolerance:
    """The caller's rtol/atol (both or neither), else the per-dtype default."""
    if (rtol is None) != (atol is None):
        raise UsageError("give both --rtol and --atol, or neither (then per-dtype defaults apply)")
    if rtol is not None:
        if rtol < 0 or atol < 0:
            raise UsageError(f"tolerances must be non-negative, got rtol={rtol} atol={atol}")
        return Tolerance(rtol, atol)
    return Tolerance(*DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0)))


@dataclass(frozen=True)
class TensorComparison:
    """Metrics for one (reference, candidate) pair. ``bool()`` is whether it passed."""

    ref_name: str
    cand_name: str
    ref_shape: tuple[int, ...]
    cand_shape: tuple[int, ...]
    ref_dtype: str
    cand_dtype: str
    rtol: float
    atol: float
    passed: bool
    allclose_ratio: float
    cosine_similarity: float
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float
    mismatched: int
    total: int
    worst_index: tuple[int, ...] | None = None
    note: str = ""
    diff_histogram: tuple[int, ...] | None = None  # failing tensors only, bins of DIFF_HISTOGRAM_EDGES

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class _BlockStats:
    close: int = 0
    sum_abs: float = 0.0
    max_abs: float = 0.0
    max_abs_at: int = -1
    max_rel: float = 0.0
    dot: float = 0.0
    ref_sq: float = 0.0
    cand_sq: float = 0.0
    count: int = 0
    finite: int = -1  # elements finite on both sides (-1: all of them)


def _block(ref: np.ndarray, cand: np.ndarray, offset: int, tol: Tolerance, equal_nan: bool) -> _BlockStats:
    if np.iscomplexobj(ref) or np.iscomplexobj(cand):
        return _general_block(ref.astype(np.complex128), cand.astype(np.complex128), offset, tol, equal_nan)
    stats = _BlockStats(max_abs=-1.0, finite=0)
    scratch = _Scratch(min(CHUNK_ELEMENTS, ref.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for s in range(0, ref.size, CHUNK_ELEMENTS):
            _chunk(ref[s : s + CHUNK_ELEMENTS], cand[s : s + CHUNK_ELEMENTS], offset + s, tol, equal_nan, scratch, stats)
    stats.max_abs = max(stats.max_abs, 0.0)
    return stats


class _Scratch:
    """float64 buffers for one chunk, reused chunk after chunk so every pass stays in the CPU's cache."""

    def __init__(self, n: int):
        self.ref, self.cand, self.diff = (np.empty(n, np.float64) for _ in range(3))
        self.flags = np.empty(n, np.bool_)

    def wide(self, values: np.ndarray, buffer: np.ndarray) -> np.ndarray:
        if values.dtype == np.float64:
            return values
        out = buffer[: values.size]
        np.copyto(out, values, casting="unsafe")
        return out


def _chunk(ref, cand, offset: int, tol: Tolerance, equal_nan: bool, scratch: _Scratch, stats: _BlockStats) -> None:
    """One cache-sized chunk: numpy's isclose and the metrics in float64, a few passes, no masks when all finite."""
    n = ref.size
    r, c = scratch.wide(ref, scratch.ref), scratch.wide(cand, scratch.cand)
    diff = np.subtract(c, r, out=scratch.diff[:n])
    np.abs(diff, out=diff)
    total = float(diff.sum())
    if not np.isfinite(total):  # NaN or infinity somewhere (or a float64 overflow): the masked path
        _merge(stats, _general_block(r, c, offset, tol, equal_nan))
        return
    at = int(np.argmax(diff))
    largest = float(diff[at])
    for s in range(0, n, _DOT_PIECE):
        rs, cs = r[s : s + _DOT_PIECE], c[s : s + _DOT_PIECE]
        stats.dot += float(np.dot(rs, cs))
        stats.ref_sq += float(np.dot(rs, rs))
        stats.cand_sq += float(np.dot(cs, cs))
    bound = np.abs(r, out=scratch.ref[:n])  # r and c are spent: their buffers hold |r| and the ratios
    rel = np.fmax.reduce(np.divide(diff, bound, out=scratch.cand[:n]))  # 0/0 -> nan (equal zeros), x/0 -> inf
    stats.max_rel = max(stats.max_rel, 0.0 if np.isnan(rel) else float(rel))  # fmax skips the NaNs
    if largest <= tol.atol:  # every bound |r| * rtol + atol is at least atol: all close, no bound computed
        stats.close += n
    else:
        bound *= tol.rtol
        bound += tol.atol
        stats.close += int(np.count_nonzero(np.less_equal(diff, bound, out=scratch.flags[:n])))
    stats.sum_abs += total
    if largest > stats.max_abs:
        stats.max_abs, stats.max_abs_at = largest, offset + at
    stats.count += n
    stats.finite += n


def _merge(stats: _BlockStats, part: _BlockStats) -> None:
    stats.close += part.close
    stats.sum_abs += part.sum_abs
    stats.max_rel = max(stats.max_rel, part.max_rel)
    if part.max_abs > stats.max_abs:
        stats.max_abs, stats.max_abs_at = part.max_abs, part.max_abs_at
    stats.dot += part.dot
    stats.ref_sq += part.ref_sq
    stats.cand_sq += part.cand_sq
    stats.count += part.count
    stats.finite += part.finite


def _general_block(r: np.ndarray, c: np.ndarray, offset: int, tol: Tolerance, equal_nan: bool) -> _BlockStats:
    """Any values: NaN, infinities, complex."""
    close = np.isclose(c, r, rtol=tol.rtol, atol=tol.atol, equal_nan=equal_nan)
    same = (r == c) | (np.isnan(r) & np.isnan(c))  # equal infinities and paired NaNs differ by 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(c - r)
        diff[same] = 0.0
        diff[np.isnan(diff)] = np.inf  # NaN against a number: an unbounded difference
        rel = np.where(diff == 0, 0.0, diff / np.abs(r))
    finite = np.isfinite(r) & np.isfinite(c)
    rf, cf = r[finite], c[finite]
    at = int(np.argmax(diff)) if diff.size else -1
    return _BlockStats(
        close=int(np.count_nonzero(close)),
        sum_abs=float(diff.sum()) if diff.size else 0.0,
        max_abs=float(diff[at]) if diff.size else 0.0,
        max_abs_at=offset + at if diff.size else -1,
        max_rel=float(rel.max()) if rel.size else 0.0,
        dot=float(np.real(np.vdot(rf, cf))),
        ref_sq=float(np.real(np.vdot(rf, rf))),
        cand_sq=float(np.real(np.vdot(cf, cf))),
        count=int(r.size),
        finite=int(rf.size),
    )


def _cosine(dot: float, ref_sq: float, cand_sq: float) -> float:
    if ref_sq == 0.0 and cand_sq == 0.0:
        return 1.0
    if ref_sq == 0.0 or cand_sq == 0.0:
        return 0.0
    return float(np.clip(dot / (np.sqrt(ref_sq) * np.sqrt(cand_sq)), -1.0, 1.0))


def _unmatched(ref: NamedArray, cand: NamedArray, tol: Tolerance, note: str) -> TensorComparison:
    nan = float("nan")
    return TensorComparison(
        ref.name, cand.name, ref.shape, cand.shape, ref.dtype, cand.dtype, tol.rtol, tol.atol,
        passed=False, allclose_ratio=0.0, cosine_similarity=nan, max_abs_diff=nan, mean_abs_diff=nan,
        max_rel_diff=nan, mismatched=max(ref.array.size, cand.array.size), total=ref.array.size, note=note,
    )


def compare_tensors(
    ref: NamedArray,
    cand: NamedArray,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
) -> TensorComparison:
    """Compare cand against ref; shape mismatches are reported, not raised."""
    tol = resolve_tolerance(ref.dtype, rtol, atol)
    if ref.shape != cand.shape:
        return _unmatched(ref, cand, tol, f"shape {list(ref.shape)} vs {list(cand.shape)}")
    r = ref.numeric().reshape(-1)
    c = cand.numeric().reshape(-1)
    if r.dtype.kind == "b":
        r, c = r.astype(np.uint8), c.astype(np.uint8)
    if r.dtype == c.dtype and r.size and _equal(r, c):  # a copy checked: one pass, no float64 work
        return TensorComparison(
            ref.name, cand.name, ref.shape, cand.shape, ref.dtype, cand.dtype, tol.rtol, tol.atol, passed=True,
            allclose_ratio=1.0, cosine_similarity=1.0, max_abs_diff=0.0, mean_abs_diff=0.0, max_rel_diff=0.0,
            mismatched=0, total=int(r.size))
    starts = range(0, r.size, BLOCK_ELEMENTS)
    work = [(r[s : s + BLOCK_ELEMENTS], c[s : s + BLOCK_ELEMENTS], s, tol, equal_nan) for s in starts]
    blocks = list(_POOL.map(lambda args: _block(*args), work)) if len(work) > 1 else [_block(*w) for w in work]
    total = sum(b.count for b in blocks)
    close = sum(b.close for b in blocks)
    worst = max(blocks, key=lambda b: b.max_abs) if blocks else _BlockStats()
    max_abs = worst.max_abs
    worst_index = tuple(int(i) for i in np.unravel_index(worst.max_abs_at, ref.shape)) if total and max_abs > 0 else None
    note = "" if ref.dtype == cand.dtype else f"dtype {ref.dtype} vs {cand.dtype}"
    histogram = None
    if close < total:  # a second pass, for the failing tensors only: where do their differences lie?
        parts = [(r[s : s + BLOCK_ELEMENTS], c[s : s + BLOCK_ELEMENTS]) for s in starts]
        counts = list(_POOL.map(lambda args: _histogram_block(*args), parts)) if len(parts) > 1 else \
            [_histogram_block(*p) for p in parts]
        histogram = tuple(int(sum(column)) for column in zip(*counts))
    return TensorComparison(
        ref.name, cand.name, ref.shape, cand.shape, ref.dtype, cand.dtype, tol.rtol, tol.atol,
        passed=close == total,
        allclose_ratio=close / total if total else 1.0,
        # identical tensors are exactly parallel; the float sum would say 0.9999999999
        cosine_similarity=1.0 if total and max_abs == 0 and close == total else
        float("nan") if total and not any(b.finite for b in blocks) else  # no element finite on both sides
        _cosine(sum(b.dot for b in blocks), sum(b.ref_sq for b in blocks), sum(b.cand_sq for b in blocks)),
        max_abs_diff=max_abs,
        mean_abs_diff=sum(b.sum_abs for b in blocks) / total if total else 0.0,
        max_rel_diff=max((b.max_rel for b in blocks), default=0.0),
        mismatched=total - close,
        total=total,
        worst_index=worst_index,
        note=note,
        diff_histogram=histogram,
    )


def _equal(ref: np.ndarray, cand: np.ndarray) -> bool:
    """Element-wise equal (NaN never is), block by block over both threads."""
    head = min(ref.size, 1024)
    if not np.array_equal(ref[:head], cand[:head]):  # most differing pairs differ early: no whole pass for them
        return False
    if ref.size <= BLOCK_ELEMENTS:
        return bool(np.array_equal(ref, cand))
    starts = range(0, ref.size, BLOCK_ELEMENTS)
    return all(_POOL.map(lambda s: bool(np.array_equal(ref[s:s + BLOCK_ELEMENTS], cand[s:s + BLOCK_ELEMENTS])),
                         starts))


def _histogram_block(ref: np.ndarray, cand: np.ndarray) -> list[int]:
    wide = np.complex128 if np.iscomplexobj(ref) or np.iscomplexobj(cand) else np.float64
    r, c = ref.astype(wide, copy=False), cand.astype(wide, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(c - r)
    diff[(r == c) | (np.isnan(r) & np.isnan(c))] = 0.0
    diff[np.isnan(diff)] = np.inf
    above = [int(np.count_nonzero(diff > edge)) for edge in DIFF_HISTOGRAM_EDGES]
    return [diff.size - above[0], *(a - b for a, b in zip(above, above[1:])), above[-1]]


# The noise rule locate and train-step share: a tensor of the port differs from float64 torch at least
# NOISE_RATIO_LIMIT times more than torch's own float32 run does (its floor, at least NOISE_ABS_FLOOR).
NOISE_RATIO_LIMIT = 10.0
NOISE_ABS_FLOOR = 1e-6


def rel_l2(ref: np.ndarray, cand: np.ndarray) -> float:
    """||cand - ref|| / ||ref|| in float64 (finite elements only; NaN when ref has none)."""
    ref64, cand64 = np.asarray(ref, np.float64).ravel(), np.asarray(cand, np.float64).ravel()
    keep = np.isfinite(ref64) & np.isfinite(cand64)
    if not keep.any():
        return float("nan")
    diff = float(np.linalg.norm(cand64[keep] - ref64[keep]))
    return diff / max(float(np.linalg.norm(ref64[keep])), np.finfo(np.float64).tiny)


def noise_ratio(err: float, floor: float, abs_floor: float = NOISE_ABS_FLOOR) -> float:
    """err in units of max(floor, abs_floor); NaN when err is."""
    if np.isnan(err):
        return float("nan")
    base = max(floor, abs_floor) if not np.isnan(floor) else abs_floor
    return err / base
