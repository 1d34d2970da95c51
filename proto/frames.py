"""TensorChunk messages as bytes, without protobuf's copies of the data: the same wire, one copy fewer each way.

Parsing a TensorChunk with protobuf copies its 1 MiB of data into the message and again into a ``bytes`` when
``.data`` is read; serializing copies it once out of the tensor and again into the message's bytes. Here a chunk
is written in one join (a small prefix, then the tensor's bytes) and read as a memoryview into the bytes grpcio
received. The bytes are exactly protobuf's: header (field 1) then data (field 2), an empty data field left out.
A message of any other shape (fields repeated, out of order, unknown) is handed to protobuf itself.
"""

from __future__ import annotations

from typing import NamedTuple

import grpc

from proto import worker_pb2, worker_pb2_grpc
from proto.tensor_pb2 import TensorChunk, TensorHeader

_HEADER_TAG = 0x0A  # field 1, length-delimited
_DATA_TAG = 0x12  # field 2, length-delimited
CHUNK_TYPE = TensorChunk.DESCRIPTOR.full_name


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
    """(value, the offset after it); IndexError past the end."""
    value = shift = 0
    while True:
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


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


def _serialize_reply(message) -> bytes:
    # a streamed tensor's chunks arrive as bytes already (codec.encode_frames); other replies as messages
    return message if type(message) is bytes else message.SerializeToString()


_KINDS = {(False, False): "unary_unary", (False, True): "unary_stream", (True, False): "stream_unary",
          (True, True): "stream_stream"}
_SERVICE = worker_pb2.DESCRIPTOR.services_by_name["Worker"]


def _message_class(descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


def add_worker_service(servicer, server: grpc.Server) -> None:
    """Register servicer's Worker methods on server, as the generated code does, with tensor streams sent as
    frames (see the module docstring)."""
    handlers = {}
    for method in _SERVICE.methods:
        reply = _message_class(method.output_type)
        serialize = _serialize_reply if method.output_type.full_name == CHUNK_TYPE else reply.SerializeToString
        factory = getattr(grpc, f"{_KINDS[(method.client_streaming, method.server_streaming)]}_rpc_method_handler")
        handlers[method.name] = factory(getattr(servicer, method.name),
                                        request_deserializer=_message_class(method.input_type).FromString,
                                        response_serializer=serialize)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(_SERVICE.full_name, handlers)


def worker_stub(channel: grpc.Channel) -> worker_pb2_grpc.WorkerStub:
    """The generated Worker stub, with tensor streams read as Frames (see the module docstring)."""
    stub = worker_pb2_grpc.WorkerStub(channel)
    for method in _SERVICE.methods:
        if method.output_type.full_name == CHUNK_TYPE:
            kind = _KINDS[(method.client_streaming, method.server_streaming)]
            setattr(stub, method.name, getattr(channel, kind)(
                f"/{_SERVICE.full_name}/{method.name}",
                request_serializer=_message_class(method.input_type).SerializeToString,
                response_deserializer=parse_chunk, _registered_method=True))
    return stub
