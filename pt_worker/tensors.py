"""The only torch <-> numpy boundary of the PyTorch worker."""

from __future__ import annotations

import numpy as np
import torch

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import BadRequest

WIRE_FROM_PT: dict[torch.dtype, str] = {
    torch.bool: "bool",
    torch.uint8: "uint8",
    torch.int8: "int8",
    torch.int16: "int16",
    torch.uint16: "uint16",
    torch.int32: "int32",
    torch.uint32: "uint32",
    torch.int64: "int64",
    torch.uint64: "uint64",
    torch.float16: "float16",
    torch.bfloat16: dtypes.BFLOAT16,
    torch.float32: "float32",
    torch.float64: "float64",
    torch.complex64: "complex64",
    torch.complex128: "complex128",
}
PT_FROM_WIRE: dict[str, torch.dtype] = {wire: pt for pt, wire in WIRE_FROM_PT.items()}


def wire_dtype_from_pt(dtype: torch.dtype) -> str:
    try:
        return WIRE_FROM_PT[dtype]
    except KeyError:
        raise BadRequest(f"torch dtype {dtype} has no wire form") from None


def numpy_from_pt(name: str, tensor: torch.Tensor) -> NamedArray:
    """A NamedArray holding tensor's values on the CPU (bfloat16 as its raw bits)."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    wire = wire_dtype_from_pt(tensor.dtype)
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.uint16)
    if tensor.is_conj():
        tensor = tensor.resolve_conj()
    return NamedArray(name, tensor.numpy(), wire)


def pt_from_numpy(tensor: NamedArray, device: torch.device | str = "cpu") -> torch.Tensor:
    """A torch tensor with tensor's values, on device."""
    array = tensor.array
    if not array.flags.writeable:
        array = array.copy()
    pt = torch.from_numpy(np.asarray(array))
    if tensor.dtype == dtypes.BFLOAT16:
        pt = pt.view(torch.bfloat16)
    return pt.to(device) if str(device) != "cpu" else pt


def is_pt_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor)
