"""The Worker service on a gRPC server and on a channel, as the generated code sets them up, but for the tensor
streams: a reply's chunks go out as the bytes proto.codec.encode_frames made, and come in as proto.frames.Frame
views (no protobuf copies of the data either way; the bytes on the wire are the same)."""

from __future__ import annotations

import grpc
from google.protobuf import message_factory

from proto import worker_pb2, worker_pb2_grpc
from proto.frames import parse_chunk
from proto.tensor_pb2 import TensorChunk

CHUNK_TYPE = TensorChunk.DESCRIPTOR.full_name


def _serialize_reply(message) -> bytes:
    # a streamed tensor's chunks arrive as bytes already (codec.encode_frames); other replies as messages
    return message if type(message) is bytes else message.SerializeToString()


_KINDS = {(False, False): "unary_unary", (False, True): "unary_stream", (True, False): "stream_unary",
          (True, True): "stream_stream"}
_SERVICE = worker_pb2.DESCRIPTOR.services_by_name["Worker"]


def _message_class(descriptor):
    return message_factory.GetMessageClass(descriptor)


def add_worker_service(servicer, server: grpc.Server) -> None:
    """Register servicer's Worker methods on server, as the generated code does, tensor streams sent as frames."""
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
    """The generated Worker stub, tensor streams read as Frames."""
    stub = worker_pb2_grpc.WorkerStub(channel)
    for method in _SERVICE.methods:
        if method.output_type.full_name == CHUNK_TYPE:
            kind = _KINDS[(method.client_streaming, method.server_streaming)]
            setattr(stub, method.name, getattr(channel, kind)(
                f"/{_SERVICE.full_name}/{method.name}",
                request_serializer=_message_class(method.input_type).SerializeToString,
                response_deserializer=parse_chunk, _registered_method=True))
    return stub
