"""numpy <-> TensorChunk streams: a header, then raw C-order little-endian bytes in chunks.

The encoder makes one copy of each chunk (protobuf needs ``bytes``; ``encode_frames`` makes the message's bytes
in that one copy); the decoder writes chunks into one buffer per tensor, so a tensor is held once while it
arrives: a buffer of its own, or the memory it is going to (``place``: a parameter's, on a CPU worker). Nothing
is ever pickled: dtype, shape and byte count come from the header and are checked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import xxhash

from proto import dtypes
from proto.frames import Frame, chunk_bytes, frame_of, parse_chunk
from proto.tensor_pb2 import TensorChunk, TensorHeader

CHUNK_BYTES = 1 << 20  # ~1 MiB measured best on loopback (DESIGN.md section 4)


class CodecError(ValueError):
    """A malformed tensor stream: the message names the tensor and what is wrong."""


@dataclass(frozen=True)
class NamedArray:
    """A named tensor in numpy form; ``dtype`` is its wire name (bfloat16 is held as uint16 bits)."""

    name: str
    array: np.ndarray
    dtype: str = field(default="")

    def __post_init__(self) -> None:
        if not self.dtype:
            object.__setattr__(self, "dtype", dtypes.wire_dtype_from_numpy(self.array.dtype))
        expected = dtypes.numpy_dtype_from_wire(self.dtype)
        if self.array.dtype.str[1:] != expected.str[1:]:  # kind and size; byte order is fixed on encode
            raise CodecError(f"tensor {self.name!r}: array dtype {self.array.dtype} does not store {self.dtype}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def numeric(self) -> np.ndarray:
        """Values as numpy numbers (bfloat16 widened to float32)."""
        return dtypes.numeric_array(self.array, self.dtype)


@dataclass(frozen=True)
class TensorSpec:
    """Name, wire dtype and shape of a tensor, without data (what a stream's header says)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


def spec_of(tensor: NamedArray) -> TensorSpec:
    """The spec of a tensor."""
    return TensorSpec(tensor.name, tensor.dtype, tensor.shape)


DIGEST_ALGORITHM = b"xxh3-128:"  # leads every digest: a digest of another algorithm (a 1.7 worker's SHA-256,
# a 1.6 worker's BLAKE2b) never equals one of these, so such tensors are compared by value: slower, never wrong


def digest_of(tensor: NamedArray) -> bytes:
    """A digest of a tensor's values in wire order: equal digests, equal tensors (XXH3's 128 bits: 17 GB/s here,
    against SHA-256's 1.7; the check it serves proves a copy exact, with no adversary)."""
    array = _little_endian_c_order(tensor.array)
    data = memoryview(array.reshape(-1)).cast("B") if array.size else b""
    return DIGEST_ALGORITHM + xxhash.xxh3_128_digest(data)


def _little_endian_c_order(array: np.ndarray) -> np.ndarray:
    # np.asarray(order="C") keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    array = np.asarray(array, order="C")
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and np.little_endian is False):
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


def _chunked(tensors: Iterable[NamedArray], chunk_bytes: int) -> Iterator[tuple[TensorHeader | None, memoryview]]:
    seen: set[str] = set()
    for tensor in tensors:
        if tensor.name in seen:
            raise CodecError(f"tensor {tensor.name!r}: duplicate name in one stream")
        seen.add(tensor.name)
        array = _little_endian_c_order(tensor.array)
        raw = memoryview(array.reshape(-1)).cast("B") if array.size else memoryview(b"")
        header = TensorHeader(name=tensor.name, dtype=tensor.dtype, shape=array.shape, nbytes=raw.nbytes)
        first_end = min(chunk_bytes, raw.nbytes)
        yield header, raw[:first_end]
        for start in range(first_end, raw.nbytes, chunk_bytes):
            yield None, raw[start : start + chunk_bytes]


def encode(tensors: Iterable[NamedArray], chunk_bytes: int = CHUNK_BYTES) -> Iterator[TensorChunk]:
    """Yield TensorChunk messages for each tensor: header on the first chunk, then data chunks."""
    for header, data in _chunked(tensors, chunk_bytes):
        yield TensorChunk(header=header, data=bytes(data)) if header is not None else TensorChunk(data=bytes(data))


def encode_frames(tensors: Iterable[NamedArray], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The same stream as ``encode``, each TensorChunk already serialized (for a reply stream: proto.frames)."""
    for header, data in _chunked(tensors, size):
        yield chunk_bytes(header, data)


Place = Callable[[TensorHeader], "np.ndarray | None"]  # the memory a tensor goes into, or None

MAX_TENSOR_BYTES = int(os.environ.get("MSPARITY_MAX_TENSOR_BYTES", 64 << 30))  # one tensor of a stream
MAX_STREAM_BYTES = int(os.environ.get("MSPARITY_MAX_STREAM_BYTES", 1 << 40))  # all tensors of one call


def _start_tensor(header: TensorHeader, seen: set[str], so_far: int = 0) -> tuple[int, np.dtype]:
    """A tensor's byte count and numpy dtype, checked against its header and the caps."""
    name = header.name
    if not name:
        raise CodecError("tensor header without a name")
    if name in seen:
        raise CodecError(f"tensor {name!r}: duplicate name in one stream")
    seen.add(name)
    try:
        np_dtype = dtypes.numpy_dtype_from_wire(header.dtype)
    except dtypes.UnknownDtypeError as exc:
        raise CodecError(f"tensor {name!r}: {exc}") from None
    if any(dim < 0 for dim in header.shape):
        raise CodecError(f"tensor {name!r}: negative dimension in shape {list(header.shape)}")
    expected = math.prod(int(d) for d in header.shape) * np_dtype.itemsize
    if header.nbytes != expected:
        raise CodecError(
            f"tensor {name!r}: header says {header.nbytes} bytes but shape {list(header.shape)} "
            f"of {header.dtype} needs {expected}"
        )
    if expected > MAX_TENSOR_BYTES or so_far + expected > MAX_STREAM_BYTES:
        raise CodecError(f"tensor {name!r}: {expected / 2**30:.1f} GiB is more than one call may send "
                         f"({MAX_TENSOR_BYTES / 2**30:g} GiB a tensor, {MAX_STREAM_BYTES / 2**30:g} GiB a call; "
                         "MSPARITY_MAX_TENSOR_BYTES / MSPARITY_MAX_STREAM_BYTES raise them)")
    return expected, np_dtype


def _buffer(header: TensorHeader, nbytes: int, place: Place | None) -> np.ndarray:
    """Where a tensor's bytes go: the placed memory, or a buffer allocated, not touched (pages fill as data
    arrives)."""
    placed = place(header) if place is not None else None
    if placed is not None and placed.dtype == np.uint8 and placed.shape == (nbytes,) and placed.flags.writeable:
        return placed
    try:
        return np.empty(nbytes, np.uint8)
    except MemoryError:
        raise CodecError(f"tensor {header.name!r}: cannot hold {nbytes / 2**30:.1f} GiB here") from None


def decode(chunks: Iterable[TensorChunk | Frame | bytes], place: Place | None = None) -> Iterator[NamedArray]:
    """Yield each tensor as soon as its last byte arrives; raise CodecError on a malformed stream.

    ``place(header)`` may give the memory a tensor is to be written into (a writable uint8 array of exactly
    ``header.nbytes``, checked here); the tensor is then yielded as a view of it. None: a buffer of its own."""
    seen: set[str] = set()
    header: TensorHeader | None = None
    buffer = np.empty(0, np.uint8)
    np_dtype = np.dtype("u1")
    filled = total = 0
    for chunk in chunks:
        frame = chunk if type(chunk) is Frame else parse_chunk(chunk) if type(chunk) is bytes else frame_of(chunk)
        if frame.header is not None:
            if header is not None:
                raise CodecError(
                    f"tensor {header.name!r}: stream moved to {frame.header.name!r} after "
                    f"{filled} of {header.nbytes} bytes"
                )
            header = frame.header
            nbytes, np_dtype = _start_tensor(header, seen, total)
            buffer = _buffer(header, nbytes, place)
            total += nbytes
            filled = 0
        elif header is None:
            raise CodecError("tensor data arrived before any header")
        data = frame.data
        size = len(data) if type(data) is bytes else data.nbytes
        if filled + size > len(buffer):
            raise CodecError(f"tensor {header.name!r}: more bytes than the {header.nbytes} its header declares")
        if size:
            buffer[filled : filled + size] = np.frombuffer(data, np.uint8)
        filled += size
        if filled == len(buffer):
            array = buffer.view(np_dtype).reshape(tuple(header.shape))
            yield NamedArray(header.name, array, header.dtype)
            header = None
    if header is not None:
        raise CodecError(f"tensor {header.name!r}: stream ended after {filled} of {header.nbytes} bytes")
