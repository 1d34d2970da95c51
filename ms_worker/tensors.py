"""The only mindspore <-> numpy boundary of the MindSpore worker."""

from __future__ import annotations

import mindspore as ms
import numpy as np

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import BadRequest

WIRE_FROM_MS = {
    ms.bool_: "bool",
    ms.uint8: "uint8",
    ms.int8: "int8",
    ms.int16: "int16",
    ms.uint16: "uint16",
    ms.int32: "int32",
    ms.uint32: "uint32",
    ms.int64: "int64",
    ms.uint64: "uint64",
    ms.float16: "float16",
    ms.bfloat16: dtypes.BFLOAT16,
    ms.float32: "float32",
    ms.float64: "float64",
    ms.complex64: "complex64",
    ms.complex128: "complex128",
}
MS_FROM_WIRE = {wire: ms_dtype for ms_dtype, wire in WIRE_FROM_MS.items()}


def wire_dtype_from_ms(dtype) -> str:
    try:
        return WIRE_FROM_MS[dtype]
    except KeyError:
        raise BadRequest(f"mindspore dtype {dtype} has no wire form") from None


def numpy_from_ms(name: str, tensor) -> NamedArray:
    """A NamedArray holding tensor's values (bfloat16 as its raw bits)."""
    wire = wire_dtype_from_ms(tensor.dtype)
    if tensor.dtype == ms.bfloat16:
        tensor = tensor.view(ms.uint16)
    return NamedArray(name, np.asarray(tensor.asnumpy()), wire)


def ms_from_numpy(tensor: NamedArray) -> ms.Tensor:
    """A mindspore Tensor with tensor's values."""
    result = ms.Tensor(np.ascontiguousarray(tensor.array) if tensor.array.ndim else tensor.array)
    if tensor.dtype == dtypes.BFLOAT16:
        result = result.view(ms.bfloat16)
    return result


def is_ms_tensor(value: object) -> bool:
    return isinstance(value, ms.Tensor)
