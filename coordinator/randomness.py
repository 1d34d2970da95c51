"""Inputs generated once on the coordinator from one seeded numpy Generator, sent to both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from proto import dtypes
from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError, UsageError
from proto.worker.net_io import input_name

DEFAULT_INT_RANGE = (0, 100)


def parse_input_shape(text: str, index: int = 0) -> TensorSpec:
    """``"2,3,224,224:float32"`` -> TensorSpec("input0", "float32", (2, 3, 224, 224)); dtype defaults to float32."""
    shape_text, _, dtype = text.partition(":")
    dtype = dtype.strip() or "float32"
    try:
        shape = tuple(int(part) for part in shape_text.split(",") if part.strip() != "")
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected comma-separated integers, e.g. 2,3,224,224:float32") from None
    if any(dim < 0 for dim in shape):
        raise UsageError(f"--input-shape {text!r}: dimensions must be non-negative")
    if dtype not in dtypes.NUMPY_FROM_WIRE:
        raise UsageError(f"--input-shape {text!r}: unknown dtype {dtype!r}; known: {', '.join(dtypes.WIRE_DTYPES)}")
    return TensorSpec(input_name(index), dtype, shape)


def generate_inputs(specs: list[TensorSpec], seed: int) -> list[NamedArray]:
    """Random inputs for specs: floats ~ N(0, 1), integers in [0, 100), bools fair coins."""
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
            values = rng.integers(*DEFAULT_INT_RANGE, size=spec.shape).astype(dtypes.NUMPY_FROM_WIRE[spec.dtype])
        arrays.append(NamedArray(name, values, spec.dtype))
    return arrays


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
        try:
            arrays.append(NamedArray(input_name(index), array))
        except dtypes.UnknownDtypeError as exc:
            raise MsparityError(f"--inputs {path}: {exc}") from None
    return arrays
