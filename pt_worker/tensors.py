"""The only torch <-> numpy boundary of the PyTorch worker (the same verbs as ms_worker.tensors)."""

from __future__ import annotations

import numpy as np
import torch

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import BadRequest

# torch calls every wire dtype by its wire name (torch.float32, torch.bfloat16, torch.bool, ...)
WIRE_FROM_NATIVE: dict[torch.dtype, str] = {getattr(torch, wire): wire for wire in dtypes.WIRE_DTYPES}
NATIVE_FROM_WIRE: dict[str, torch.dtype] = {wire: native for native, wire in WIRE_FROM_NATIVE.items()}


def wire_dtype_from_native(dtype: torch.dtype) -> str:
    try:
        return WIRE_FROM_NATIVE[dtype]
    except KeyError:
        raise BadRequest(f"torch dtype {dtype} has no wire form") from None


def numpy_from_native(name: str, tensor: torch.Tensor) -> NamedArray:
    """A NamedArray holding tensor's values on the CPU (bfloat16 as its raw bits; a DTensor's: this rank's slice)."""
    tensor = plain_tensor(tensor.detach())
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    wire = wire_dtype_from_native(tensor.dtype)
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.uint16)
    if tensor.is_conj():
        tensor = tensor.resolve_conj()
    return NamedArray(name, tensor.numpy(), wire)


def native_from_numpy(tensor: NamedArray, device: torch.device | str = "cpu") -> torch.Tensor:
    """A torch tensor with tensor's values, on device."""
    array = tensor.array
    if not array.flags.writeable:
        array = array.copy()
    native = torch.from_numpy(np.asarray(array))
    if tensor.dtype == dtypes.BFLOAT16:
        native = native.view(torch.bfloat16)
    return native.to(device) if str(device) != "cpu" else native


def is_native_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor)


def plain_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A plain tensor of a tensor-parallel one: a DTensor's local slice, an async collective's waited result."""
    if type(tensor) is torch.Tensor or isinstance(tensor, torch.nn.Parameter):
        return tensor
    if hasattr(tensor, "to_local"):  # torch.distributed.tensor.DTensor
        return tensor.to_local()
    if hasattr(tensor, "trigger_wait"):  # _functional_collectives.AsyncCollectiveTensor
        return tensor.trigger_wait()
    return tensor
