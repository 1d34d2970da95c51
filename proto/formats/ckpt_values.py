"""One MindSpore checkpoint Value <-> (tag, numpy tensor), without mindspore.

File-level concerns (streaming, splitting big parameters, the CRC trailer) live in
coordinator/formats/ckpt.py; this module only owns the protobuf messages.
"""

from __future__ import annotations

import numpy as np

from proto import dtypes
from proto.codec import NamedArray
from proto.ms_checkpoint_pb2 import Checkpoint, TensorProto

# wire dtype -> MindSpore tensor_type string (serialization.py tensor_to_ms_type)
MS_TYPE_FROM_WIRE: dict[str, str] = {
    "bool": "Bool",
    "uint8": "UInt8",
    "int8": "Int8",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "uint64": "UInt64",
    "float16": "Float16",
    dtypes.BFLOAT16: "BFloat16",
    "float32": "Float32",
    "float64": "Float64",
    "complex64": "Complex64",
    "complex128": "Complex128",
}
WIRE_FROM_MS_TYPE: dict[str, str] = {ms: wire for wire, ms in MS_TYPE_FROM_WIRE.items()}


class CheckpointValueError(ValueError):
    """A Value that does not hold a plain tensor of a known type."""


def encode_value(tag: str, array: np.ndarray, wire_dtype: str, shape: tuple[int, ...]) -> bytes:
    """A serialized Checkpoint holding one Value: ``array`` is the content (maybe a part), ``shape`` the full shape."""
    message = Checkpoint()
    value = message.value.add()
    value.tag = tag
    value.tensor.dims.extend(shape)
    value.tensor.tensor_type = MS_TYPE_FROM_WIRE[wire_dtype]
    value.tensor.tensor_content = np.asarray(array, order="C").tobytes()
    return message.SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def value_record(tag: str, array: np.ndarray, wire_dtype: str, shape: tuple[int, ...]) -> list:
    """The bytes of encode_value as pieces, the tensor content as a zero-copy view of array.

    Same bytes as protobuf's serializer (fields in number order): the small parts come from
    protobuf, only the length-delimited framing around the content is written here, so a
    multi-GB parameter is never copied into a message.
    """
    content = memoryview(np.asarray(array, order="C").reshape(-1)).cast("B") if array.size else memoryview(b"")
    tensor_head = TensorProto(dims=shape, tensor_type=MS_TYPE_FROM_WIRE[wire_dtype]).SerializePartialToString()
    content_head = b"\x1a" + _varint(content.nbytes)  # field 3, length-delimited
    tensor_len = len(tensor_head) + len(content_head) + content.nbytes
    tag_bytes = tag.encode("utf-8")
    value_head = b"\x0a" + _varint(len(tag_bytes)) + tag_bytes + b"\x12" + _varint(tensor_len)  # fields 1 and 2
    value_len = len(value_head) + tensor_len
    return [b"\x0a" + _varint(value_len) + value_head + tensor_head + content_head, content]


def decode_value(payload: bytes) -> tuple[str, str, tuple[int, ...], bytes]:
    """(tag, wire dtype, full shape, content bytes) of one serialized Checkpoint.Value."""
    value = Checkpoint.Value()
    value.ParseFromString(payload)
    if not value.HasField("tensor"):
        raise CheckpointValueError(f"{value.tag!r} holds a {value.WhichOneof('value') or 'empty value'}, not a tensor")
    tensor_type = value.tensor.tensor_type
    wire = WIRE_FROM_MS_TYPE.get(tensor_type)
    if wire is None:
        raise CheckpointValueError(f"{value.tag!r} has tensor type {tensor_type!r}, which msparity does not read")
    dims = tuple(value.tensor.dims)
    if dims == (0,):  # MindSpore writes some scalars as dims [0]
        dims = ()
    return value.tag, wire, dims, value.tensor.tensor_content


def named_array(tag: str, wire: str, dims: tuple[int, ...], content: bytes) -> NamedArray:
    """The tensor a whole (unsplit or re-joined) value holds; checks the byte count."""
    np_dtype = dtypes.numpy_dtype_from_wire(wire)
    expected = int(np.prod(dims, dtype=np.int64)) * np_dtype.itemsize
    if len(content) != expected:
        raise CheckpointValueError(f"{tag!r}: {len(content)} bytes for shape {list(dims)} of {wire} (needs {expected})")
    return NamedArray(tag, np.frombuffer(content, dtype=np_dtype).reshape(dims), wire)
