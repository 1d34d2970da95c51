"""TensorChunk messages as bytes, without protobuf's copies of the data: the same wire, one copy fewer each way.

Parsing a TensorChunk with protobuf copies its 1 MiB of data into the message and again into a ``bytes`` when
``.data`` is read; serializing copies it once out of the tensor and again into the message's bytes. Here a chunk
is written in one join (a small prefix, then the tensor's bytes) and read as a memoryview into the bytes grpcio
received. The bytes are exactly protobuf's: header (field 1) then data (field 2), an empty data field left out.
A message of any other shape (fields repeated, out of order, unknown) is handed to protobuf itself.
"""

from __future__ import annotations

from typing import NamedTuple

from proto.tensor_pb2 import TensorChunk, TensorHeader

_HEADER_TAG = 0x0A  # field 1, length-delimited
_DATA_TAG = 0x12  # field 2, length-delimited


class Frame(NamedTuple):
    """One chunk of a tensor stream: its header (the first chunk of a tensor only) and a view of its data."""

    header: TensorHeader | None
    data: bytes | memoryview


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    """(a length, the offset after it); IndexError past the end or past 5 bytes (protobuf's limit for a length,
    which it refuses beyond: handed to it, it says so)."""
    value = shift = 0
    while True:
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift >= 35:
            raise IndexError("length varint too long")


def chunk_bytes(header: TensorHeader | None, data) -> bytes:
    """The serialized TensorChunk(header=header, data=data), data (bytes-like) copied once."""
    parts = []
    if header is not None:
        encoded = header.SerializeToString()
        parts += [bytes((_HEADER_TAG,)), _varint(len(encoded)), encoded]
    size = memoryview(data).nbytes
    if size:
        parts += [bytes((_DATA_TAG,)), _varint(size), data]
    return b"".join(parts)


def parse_chunk(raw: bytes) -> Frame:
    """A received TensorChunk's header and a view of its data in raw (no copy)."""
    try:
        at, header, data = 0, None, b""
        if at < len(raw) and raw[at] == _HEADER_TAG:
            size, at = _read_varint(raw, at + 1)
            if at + size > len(raw):
                raise IndexError("header past the end")
            header = TensorHeader.FromString(raw[at:at + size])
            at += size
        if at < len(raw) and raw[at] == _DATA_TAG:
            size, at = _read_varint(raw, at + 1)
            if at + size > len(raw):
                raise IndexError("data past the end")
            data = memoryview(raw)[at:at + size]
            at += size
        if at == len(raw):
            return Frame(header, data)
    except IndexError:
        pass  # protobuf below says what is wrong with it
    return frame_of(TensorChunk.FromString(raw))


def frame_of(chunk: TensorChunk) -> Frame:
    """The Frame of a parsed TensorChunk."""
    return Frame(chunk.header if chunk.HasField("header") else None, chunk.data)
