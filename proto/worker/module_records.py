"""Per-module records of one forward, and fixed-size summaries of the tensors they saw.

A worker's hooks turn every module (torch) / cell (MindSpore) call into a ModuleCall whose inputs
and outputs are TensorSummary values: float64 statistics plus a count-sketch, so the coordinator can
estimate ``||cand - ref|| / ||ref||`` without the tensors ever crossing the wire.

The sketch of a flattened (C-order) tensor x is ``sketch[j] = sum_{i: h(i)=j} s(i) * x[i]`` with a
bucket h(i) in [0, k) and a sign s(i) in {+1, -1}. It is linear, so ``sketch(a) - sketch(b)`` is
the sketch of ``a - b`` and its norm estimates ``||a - b||`` (relative spread about sqrt(2/k) on
spread-out differences; a difference confined to a few elements is caught exactly).

h and s depend only on (seed, i), never on the machine or the numpy version: element i takes the
i-th 32-bit half of PCG64(seed)'s raw stream (the low half of each 64-bit word first), a stream
numpy guarantees across versions; ``h(i) = ((half >> 1) * k) >> 31`` and ``s(i) = -1`` iff the low
bit is set. A tensor of n elements uses the first n of them, so one cached table per (k, seed)
serves every tensor size. Measured on 2 cores, 16M float32 elements: the first call 0.13-0.2 s (it
builds the codes), then 0.045 s per call; an integer hash of the index instead cost 0.24 s per call.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from proto import dtypes

SKETCH_SIZE = 256
CHUNK_ELEMENTS = 1 << 18  # measured best for bincount + statistics (bounded temporaries)
CACHE_ELEMENTS = 1 << 25  # codes kept per (k, seed): 32M elements, 64 MiB as uint16; beyond, streamed
CACHE_ENTRIES = 4
_EMPTY = np.zeros(0, dtype=np.float64)
_EMPTY.setflags(write=False)


@dataclass(frozen=True)
class TensorSummary:
    """Statistics (float64) and a count-sketch of one tensor; ``sketch`` is empty for non-floats.

    min, max and mean are over the finite elements (NaN when there are none); ``finite`` says
    whether every element was finite. ``norm`` is the L2 norm of the finite elements.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    min: float
    max: float
    mean: float
    norm: float
    finite: bool
    sketch: np.ndarray = field(default_factory=lambda: _EMPTY, compare=False, repr=False)  # read-only
    sketch_seed: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form (NaN stays a float; the JSON writer decides how to spell it)."""
        return {
            "name": self.name, "dtype": self.dtype, "shape": list(self.shape), "min": self.min,
            "max": self.max, "mean": self.mean, "norm": self.norm, "finite": self.finite,
            "sketch": self.sketch.tolist(), "sketch_seed": self.sketch_seed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TensorSummary:
        """Inverse of to_dict; also reads null as NaN and "inf"/"-inf" strings (msparity's JSON)."""
        sketch = np.asarray(data.get("sketch", ()), dtype=np.float64)
        sketch.setflags(write=False)
        stats = [math.nan if data[k] is None else float(data[k]) for k in ("min", "max", "mean", "norm")]
        return cls(
            data["name"], data["dtype"], tuple(int(d) for d in data["shape"]), *stats, bool(data["finite"]),
            sketch, int(data.get("sketch_seed", 0)),
        )


@dataclass(frozen=True)
class ModuleCall:
    """One call of one module during one forward, as the worker's hooks saw it.

    ``start`` / ``end`` come from one counter per forward, taken when the call begins (pre-hook)
    and when it returns (post-hook), so a child's [start, end] lies inside its parent's.
    ``param_names`` are the module's own parameters and buffers (full names, not recursive).
    """

    path: str
    type: str
    rule_type: str
    call: int
    start: int
    end: int
    inputs: tuple[TensorSummary, ...] = ()
    outputs: tuple[TensorSummary, ...] = ()
    param_names: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()  # the module's settings hints read (eps, approximate, pad_mode, ...)

    @property
    def key(self) -> str:
        return f"{self.path}#{self.call}"

    def encloses(self, other: ModuleCall) -> bool:
        """Whether other ran inside this call (same forward)."""
        return self.start < other.start and other.end < self.end

    def to_dict(self) -> dict:
        return {
            "path": self.path, "type": self.type, "rule_type": self.rule_type, "call": self.call,
            "start": self.start, "end": self.end, "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs], "param_names": list(self.param_names),
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModuleCall:
        return cls(
            data["path"], data["type"], data["rule_type"], int(data["call"]), int(data["start"]),
            int(data["end"]), tuple(TensorSummary.from_dict(s) for s in data.get("inputs", ())),
            tuple(TensorSummary.from_dict(s) for s in data.get("outputs", ())),
            tuple(data.get("param_names", ())), tuple(sorted(data.get("attributes", {}).items())),
        )


# -- sketch codes: element i -> 2 * h(i) + (s(i) == -1) -------------------------------------------

def _code_dtype(k: int) -> np.dtype:
    return np.dtype(np.uint16) if 2 * k <= 1 << 16 else np.dtype(np.uint32)


def _generate_codes(k: int, seed: int, first: int, count: int) -> np.ndarray:
    """Codes of elements [first, first + count); first must be even (two elements per raw word)."""
    generator = np.random.PCG64(seed)
    if first:
        generator.advance(first // 2)
    out = np.empty(count, dtype=_code_dtype(k))
    step = CHUNK_ELEMENTS + CHUNK_ELEMENTS % 2  # whole words per step
    for start in range(0, count, step):
        n = min(step, count - start)
        halves = generator.random_raw((n + 1) // 2).view(np.uint32)
        if sys.byteorder == "big":  # low half first, as on little-endian machines
            halves = halves.reshape(-1, 2)[:, ::-1].reshape(-1)
        halves = halves[:n]
        buckets = ((halves >> np.uint32(1)).astype(np.uint64) * np.uint64(k)) >> np.uint64(31)
        out[start : start + n] = (buckets << np.uint64(1)) | (halves & np.uint32(1))
    return out


class _CodeCache:
    """Code prefixes per (k, seed), grown on demand up to CACHE_ELEMENTS; a small LRU, thread-safe."""

    def __init__(self) -> None:
        self._tables: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def codes(self, k: int, seed: int, first: int, stop: int) -> np.ndarray:
        if stop > CACHE_ELEMENTS:
            aligned = first - first % 2
            return _generate_codes(k, seed, aligned, stop - aligned)[first - aligned :]
        with self._lock:
            table = self._tables.pop((k, seed), None)
            if table is None or table.size < stop:
                have = 0 if table is None else table.size
                size = min(CACHE_ELEMENTS, max(stop, 2 * have))
                size += size % 2
                grown = np.empty(size, dtype=_code_dtype(k))
                if have:
                    grown[:have] = table
                grown[have:] = _generate_codes(k, seed, have, size - have)
                grown.setflags(write=False)
                table = grown
            self._tables[(k, seed)] = table
            while len(self._tables) > CACHE_ENTRIES:
                self._tables.popitem(last=False)
        return table[first:stop]


_CACHE = _CodeCache()


def sketch_codes(numel: int, k: int = SKETCH_SIZE, seed: int = 0) -> np.ndarray:
    """``2 * h(i) + (s(i) == -1)`` for i in [0, numel): the hash every worker must agree on."""
    return _CACHE.codes(k, seed, 0, numel)


# -- summaries --------------------------------------------------------------------------------------

def _values(array: np.ndarray, dtype: str) -> tuple[np.ndarray, bool]:
    """Flat numeric values and whether they get a sketch (floats only)."""
    flat = np.asarray(array).reshape(-1)
    if dtype == dtypes.BFLOAT16:
        return dtypes.float32_from_bfloat16_bits(flat), True
    if flat.dtype.kind == "c":
        return np.abs(flat), False
    if flat.dtype.kind == "b":
        return flat.view(np.uint8), False
    return flat, flat.dtype.kind == "f"


def summarize(
    name: str, array: np.ndarray, sketch_size: int = SKETCH_SIZE, seed: int = 0, dtype: str = ""
) -> TensorSummary:
    """Statistics and count-sketch of array (float64 arithmetic, one pass in bounded chunks).

    ``dtype`` is the wire dtype, inferred from the array when empty; give it for bfloat16 (numpy
    holds bfloat16 as uint16 bits). Integer and bool tensors get statistics only; complex tensors
    get statistics of their magnitudes and no sketch. ``sketch_size=0`` skips the sketch. A tensor
    of at most ``sketch_size`` elements is its own sketch (its values, non-finite ones as 0): exact,
    and smaller on the wire.
    """
    array = np.asarray(array)
    dtype = dtype or dtypes.wire_dtype_from_numpy(array.dtype)
    values, sketched = _values(array, dtype)
    k = int(sketch_size) if sketched else 0
    if k < 0:
        raise ValueError(f"sketch_size must be >= 0, got {sketch_size}")
    own_sketch = bool(k) and values.size <= k
    if own_sketch:
        k = 0
        own = values.astype(np.float64)
        own[~np.isfinite(own)] = 0.0
    counts = np.zeros(2 * k, dtype=np.float64)
    total, squares, count, low, high, finite = 0.0, 0.0, 0, np.inf, -np.inf, True
    table = _CACHE.codes(k, seed, 0, values.size) if k and values.size <= CACHE_ELEMENTS else None
    for start in range(0, values.size, CHUNK_ELEMENTS):
        chunk = values[start : start + CHUNK_ELEMENTS].astype(np.float64, copy=False)
        square = float(np.dot(chunk, chunk))
        if not np.isfinite(square):
            keep = np.isfinite(chunk)
            if not keep.all():
                finite = False
                chunk = np.where(keep, chunk, 0.0)
                square = float(np.dot(chunk, chunk))
            n = int(np.count_nonzero(keep))
            if n:
                low, high = min(low, float(chunk[keep].min())), max(high, float(chunk[keep].max()))
        else:
            n = chunk.size
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
        total += float(chunk.sum())
        squares += square
        count += n
        if k:
            stop = start + chunk.size
            codes = table[start:stop] if table is not None else _CACHE.codes(k, seed, start, stop)
            counts += np.bincount(codes, weights=chunk, minlength=2 * k)
    sketch = own if own_sketch else counts[0::2] - counts[1::2] if k else _EMPTY
    sketch.setflags(write=False)
    nan = float("nan")
    return TensorSummary(
        name=name, dtype=dtype, shape=tuple(int(d) for d in array.shape),
        min=low if count else nan, max=high if count else nan, mean=total / count if count else nan,
        norm=float(np.sqrt(squares)), finite=finite, sketch=sketch, sketch_seed=int(seed),
    )


def estimate_rel_error(ref: TensorSummary, other: TensorSummary) -> float:
    """``||sketch(other) - sketch(ref)|| / ||ref||``, an estimate of other's relative L2 error.

    NaN when it cannot be estimated: a sketch missing, shapes, sketch sizes or seeds differ, or both
    hold non-finite values. inf when one side is finite and the other is not: a NaN that one framework's
    op turns into a number (MindSpore's ReLU maps NaN to 0, torch's keeps it) is a divergence.
    """
    if ref.shape != other.shape or not ref.sketch.size or ref.sketch.shape != other.sketch.shape:
        return float("nan")
    if ref.sketch_seed != other.sketch_seed or not (ref.finite or other.finite):
        return float("nan")
    if ref.finite != other.finite:
        return float("inf")
    diff = float(np.linalg.norm(other.sketch - ref.sketch))
    return diff / max(ref.norm, np.finfo(np.float64).tiny)
