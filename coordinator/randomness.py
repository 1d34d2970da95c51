"""Inputs generated once on the coordinator from one seeded numpy Generator, sent to both sides."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto import dtypes
from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError, UsageError, WorkerError
from proto.worker.interface import TARGET_NAME
from proto.worker.net_io import input_name

DEFAULT_INT_RANGE = (0, 100)
SHAPE_SYNTAX = "SHAPE[:DTYPE[:LOW..HIGH]], e.g. 2,3,224,224:float32 or 2,16:int64:0..50"


MAX_GENERATED_BYTES = 2 * 2**30  # one generated input, sent to both workers


@dataclass(frozen=True)
class InputSpec(TensorSpec):
    """An input to generate whose integers come from [low, high) instead of DEFAULT_INT_RANGE (token ids)."""

    low: int = DEFAULT_INT_RANGE[0]
    high: int = DEFAULT_INT_RANGE[1]


def parse_input_shape(text: str, index: int = 0) -> TensorSpec:
    """``"2,3,224,224:float32"`` -> TensorSpec("input0", "float32", (2, 3, 224, 224)); dtype defaults to float32.

    An integer input may name its range: ``"2,16:int64:0..50"`` draws from [0, 50) (HIGH is left out,
    so a vocabulary size fits), returned as an InputSpec.
    """
    shape_text, _, rest = text.partition(":")
    dtype, _, range_text = rest.partition(":")
    dtype = dtype.strip() or "float32"
    try:
        shape = tuple(int(part) for part in shape_text.split(",") if part.strip() != "")
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected comma-separated integers: {SHAPE_SYNTAX}") from None
    if any(dim < 1 for dim in shape):
        raise UsageError(f"--input-shape {text!r}: every dimension must be at least 1 (an empty input compares nothing)")
    if dtype not in dtypes.NUMPY_FROM_WIRE:
        raise UsageError(f"--input-shape {text!r}: unknown dtype {dtype!r}; known: {', '.join(dtypes.WIRE_DTYPES)}")
    nbytes = math.prod(shape) * np.dtype(dtypes.NUMPY_FROM_WIRE[dtype]).itemsize
    if nbytes > MAX_GENERATED_BYTES:
        raise UsageError(f"--input-shape {text!r}: {nbytes / 2**30:.1f} GiB is more than the {MAX_GENERATED_BYTES // 2**30} "
                         "GiB an input is generated up to; give a smaller shape, or the input as --inputs FILE.npy")
    if not range_text:
        return TensorSpec(input_name(index), dtype, shape)
    return InputSpec(input_name(index), dtype, shape, *_int_range(text, dtype, range_text))


def _int_range(text: str, dtype: str, range_text: str) -> tuple[int, int]:
    if not np.issubdtype(dtypes.NUMPY_FROM_WIRE[dtype], np.integer):
        raise UsageError(f"--input-shape {text!r}: a LOW..HIGH range is for integer inputs, not {dtype}")
    low_text, dots, high_text = range_text.partition("..")
    try:
        low, high = int(low_text), int(high_text)
    except ValueError:
        low = high = None
    if not dots or low is None or not low < high:
        raise UsageError(f"--input-shape {text!r}: the range must be LOW..HIGH with integers LOW < HIGH "
                         f"(HIGH left out), as in {SHAPE_SYNTAX}")
    info = np.iinfo(dtypes.NUMPY_FROM_WIRE[dtype])
    if low < info.min or high - 1 > info.max:
        raise UsageError(f"--input-shape {text!r}: {low}..{high} does not fit {dtype}")
    return low, high


def generate_inputs(specs: list[TensorSpec], seed: int) -> list[NamedArray]:
    """Random inputs for specs: floats ~ N(0, 1), integers in [0, 100) (an InputSpec's own range), bools fair coins."""
    rng = np.random.default_rng(seed)
    arrays = []
    for index, spec in enumerate(specs):
        name = input_name(index)
        if spec.dtype in dtypes.FLOAT_DTYPES:
            values = rng.standard_normal(spec.shape, dtype=np.float32 if spec.dtype != "float64" else np.float64)
            if spec.dtype == dtypes.BFLOAT16:  # round-to-nearest-even to bfloat16 bits
                bits = values.astype(np.float32).view(np.uint32)
                values = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            else:
                values = values.astype(dtypes.NUMPY_FROM_WIRE[spec.dtype])
        elif spec.dtype == "bool":
            values = rng.integers(0, 2, spec.shape).astype(bool)
        elif spec.dtype.startswith("complex"):
            values = (rng.standard_normal(spec.shape) + 1j * rng.standard_normal(spec.shape)).astype(spec.dtype)
        else:
            values = rng.integers(*int_range(spec), size=spec.shape).astype(dtypes.NUMPY_FROM_WIRE[spec.dtype])
        arrays.append(NamedArray(name, values, spec.dtype))
    return arrays


def int_range(spec: TensorSpec) -> tuple[int, int]:
    """[low, high) of a generated integer input."""
    return (spec.low, spec.high) if isinstance(spec, InputSpec) else DEFAULT_INT_RANGE


def index_hint(specs: list[TensorSpec]) -> str:
    """What to say when a net fails on an index (an embedding smaller than the generated ids): "" if not that case."""
    generated = [s for s in specs if np.issubdtype(dtypes.NUMPY_FROM_WIRE.get(s.dtype, np.float32), np.integer)]
    if not generated:
        return ""
    ranges = ", ".join(f"{s.name} in [{int_range(s)[0]}, {int_range(s)[1]})" for s in generated)
    return (f"; the integer inputs were generated with {ranges}: if an embedding is smaller, give the range, e.g. "
            f"--input-shape {','.join(map(str, generated[0].shape))}:{generated[0].dtype}:0..VOCAB, or pass --inputs")


@contextlib.contextmanager
def explain_index_errors(specs: list[TensorSpec] | None):
    """Re-raise a worker's IndexError failure with index_hint added (specs: the generated inputs, None if given)."""
    try:
        yield
    except WorkerError as exc:
        hint = index_hint(specs or []) if "IndexError" in exc.details else ""
        if not hint:
            raise
        raise WorkerError(exc.worker, exc.rpc, exc.status, exc.details + hint) from None


def load_input_files(paths: list[Path]) -> list[NamedArray]:
    """Inputs from .npy files, in order; pickled object arrays are refused."""
    arrays = []
    for index, path in enumerate(paths):
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise MsparityError(f"--inputs {path}: no such file") from None
        except ValueError as exc:
            raise MsparityError(f"--inputs {path}: not a plain .npy array ({exc})") from None
        except OSError as exc:
            raise MsparityError(f"--inputs {path}: cannot read ({exc})") from None
        except MemoryError:
            raise MsparityError(f"--inputs {path}: too large to load here") from None
        if not isinstance(array, np.ndarray):  # np.load opens an .npz as an archive of several arrays
            array.close()
            raise MsparityError(f"--inputs {path}: an .npz archive, not one .npy array; save each input with np.save "
                                "and repeat --inputs for each")
        try:
            arrays.append(NamedArray(input_name(index), array))
        except dtypes.UnknownDtypeError as exc:
            raise MsparityError(f"--inputs {path}: {exc}") from None
    return arrays


def make_target(loss: str, prediction: TensorSpec, rng: np.random.Generator) -> NamedArray:
    """A target for the net's first output: class indices for cross-entropy, N(0, 1) floats otherwise."""
    if loss == "cross-entropy":
        if len(prediction.shape) < 1 or prediction.shape[-1] < 1:
            raise UsageError(f"cross-entropy needs logits (..., classes); the net's first output is {list(prediction.shape)}")
        labels = rng.integers(0, prediction.shape[-1], size=prediction.shape[:-1]).astype(np.int64)
        return NamedArray(TARGET_NAME, labels, "int64")
    dtype = prediction.dtype if prediction.dtype in ("float16", "float32", "float64") else "float32"
    return NamedArray(TARGET_NAME, rng.standard_normal(prediction.shape).astype(dtype), dtype)
