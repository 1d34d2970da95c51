"""The only mindspore <-> numpy boundary of the MindSpore worker (the same verbs as pt_worker.tensors)."""

from __future__ import annotations

import functools

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


def native_from_numpy(tensor: NamedArray, device=None, share: bool = False) -> ms.Tensor:
    """A mindspore Tensor with tensor's values (the device is the context's; ``device`` mirrors the torch verb).

    ``share``: the Tensor uses the array's memory, no copy, where that memory is numpy's own (a decoded stream's
    buffer, a converted tensor): never a live torch tensor's, which a same-process net may change later."""
    array = tensor.array
    if share and array.ndim and array.flags.c_contiguous and _numpy_owned(array):
        result = ms.Tensor.from_numpy(array)
    else:
        result = ms.Tensor(np.ascontiguousarray(array) if array.ndim else array)
    if tensor.dtype == dtypes.BFLOAT16:
        result = result.view(ms.bfloat16)
    return result


def _numpy_owned(array: np.ndarray) -> bool:
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root.base is None and root.flags.owndata


@functools.cache
def _on_cpu() -> bool:
    return ms.get_context("device_target") == "CPU"  # set before a net is built, never changed by a worker


def writable_view(param: ms.Parameter) -> np.ndarray | None:
    """The parameter's own memory as numpy, or None. On CPU asnumpy() is a view of it, as its docs say, once
    PyNative's queued kernels are done (it waits for them): writing it sets the parameter, and an optimizer's
    later steps see that. Elsewhere it is a host copy: checked, not assumed."""
    if param.dtype == ms.bfloat16 or not _on_cpu():
        return None
    view = param.asnumpy()
    return view if np.shares_memory(view, param.asnumpy()) else None


def is_native_tensor(value: object) -> bool:
    return isinstance(value, ms.Tensor)
