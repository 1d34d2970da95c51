"""Wire dtype names and their numpy storage types.

Every tensor on the wire names its dtype with one of WIRE_DTYPES. numpy has no bfloat16, so a
bfloat16 tensor is held in numpy as its raw 16-bit patterns (uint16) and keeps the name
"bfloat16" beside it; both frameworks view those bits back as bfloat16 without rounding.
"""

from __future__ import annotations

import numpy as np

BFLOAT16 = "bfloat16"

# wire name -> numpy dtype that stores it (little-endian, as on the wire)
NUMPY_FROM_WIRE: dict[str, np.dtype] = {
    "bool": np.dtype("?"),
    "uint8": np.dtype("u1"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "uint16": np.dtype("<u2"),
    "int32": np.dtype("<i4"),
    "uint32": np.dtype("<u4"),
    "int64": np.dtype("<i8"),
    "uint64": np.dtype("<u8"),
    "float16": np.dtype("<f2"),
    BFLOAT16: np.dtype("<u2"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "complex64": np.dtype("<c8"),
    "complex128": np.dtype("<c16"),
}

WIRE_DTYPES = tuple(NUMPY_FROM_WIRE)
FLOAT_DTYPES = frozenset({"float16", BFLOAT16, "float32", "float64"})


class UnknownDtypeError(ValueError):
    """A dtype name or numpy dtype that has no wire form."""


def numpy_dtype_from_wire(wire_dtype: str) -> np.dtype:
    """The numpy dtype that stores wire_dtype; raises UnknownDtypeError for unknown names."""
    try:
        return NUMPY_FROM_WIRE[wire_dtype]
    except KeyError:
        raise UnknownDtypeError(
            f"unknown dtype {wire_dtype!r}; known: {', '.join(WIRE_DTYPES)}"
        ) from None


def wire_dtype_from_numpy(dtype: np.dtype) -> str:
    """The wire name of a numpy dtype (uint16 maps to "uint16"; bfloat16 must be named explicitly)."""
    dtype = np.dtype(dtype)
    name = dtype.name
    if name in NUMPY_FROM_WIRE and name != BFLOAT16:
        return name
    raise UnknownDtypeError(f"numpy dtype {dtype} has no wire form; known: {', '.join(WIRE_DTYPES)}")


def float32_from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32 exactly."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def numeric_array(array: np.ndarray, wire_dtype: str) -> np.ndarray:
    """An array whose numpy values are the tensor's values (bfloat16 bits widened to float32)."""
    if wire_dtype == BFLOAT16:
        return float32_from_bfloat16_bits(array)
    return array
