"""The only mindspore <-> numpy boundary of the MindSpore worker (the same verbs as pt_worker.tensors)."""

from __future__ import annotations

import mindspore as ms
import numpy as np

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import BadRequest

# mindspore calls every wire dtype by its wire name (ms.float32, ms.bfloat16, ...) but bool, which is ms.bool_
WIRE_FROM_NATIVE = {getattr(ms, "bool_" if wire == "bool" else wire): wire for wire in dtypes.WIRE_DTYPES}
NATIVE_FROM_WIRE = {wire: native for native, wire in WIRE_FROM_NATIVE.items()}


def wire_dtype_from_native(dtype) -> str:
    try:
        return WIRE_FROM_NATIVE[dtype]
    except KeyError:
        raise BadRequest(f"mindspore dtype {dtype} has no wire form") from None


def numpy_from_native(name: str, tensor) -> NamedArray:
    """A NamedArray holding tensor's values (bfloat16 as its raw bits)."""
    wire = wire_dtype_from_native(tensor.dtype)
    if tensor.dtype == ms.bfloat16:
        tensor = tensor.view(ms.uint16)
    return NamedArray(name, np.asarray(tensor.asnumpy()), wire)


def native_from_numpy(tensor: NamedArray, device=None) -> ms.Tensor:
    """A mindspore Tensor with tensor's values (the device is the context's; ``device`` mirrors the torch verb)."""
    result = ms.Tensor(np.ascontiguousarray(tensor.array) if tensor.array.ndim else tensor.array)
    if tensor.dtype == dtypes.BFLOAT16:
        result = result.view(ms.bfloat16)
    return result


def is_native_tensor(value: object) -> bool:
    return isinstance(value, ms.Tensor)
