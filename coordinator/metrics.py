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

BLOCK_ELEMENTS = 1 << 22
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
    wide = np.complex128 if np.iscomplexobj(ref) or np.iscomplexobj(cand) else np.float64
    r = ref.astype(wide, copy=False)
    c = cand.astype(wide, copy=False)
    if wide is np.float64:
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(np.subtract(c, r))
            if np.isfinite(diff.sum()):
                return _finite_block(r, c, diff, offset, tol)
    return _general_block(r, c, offset, tol, equal_nan)


def _finite_block(r: np.ndarray, c: np.ndarray, diff: np.ndarray, offset: int, tol: Tolerance) -> _BlockStats:
    """Every value finite (the common case): numpy's isclose in a few passes, no masks."""
    bound = np.abs(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.divide(diff, bound)  # 0/0 -> nan (equal zeros), x/0 -> inf
    bound *= tol.rtol
    bound += tol.atol
    at = int(np.argmax(diff)) if diff.size else -1
    max_rel = float(np.fmax.reduce(rel)) if rel.size else 0.0  # fmax skips the NaNs of equal zeros
    max_rel = 0.0 if np.isnan(max_rel) else max_rel
    return _BlockStats(
        close=int(np.count_nonzero(diff <= bound)),
        sum_abs=float(diff.sum()),
        max_abs=float(diff[at]) if diff.size else 0.0,
        max_abs_at=offset + at if diff.size else -1,
        max_rel=max_rel,
        dot=float(np.dot(r, c)),
        ref_sq=float(np.dot(r, r)),
        cand_sq=float(np.dot(c, c)),
        count=int(r.size),
    )


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
