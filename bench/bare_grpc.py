"""The wire's lower bound: bare grpcio streaming the same bytes as msparity's weight stream, no protocol around them.

A sink server counts what arrives; a relay server forwards each message to the sink as it comes (two hops,
as pt worker -> coordinator -> ms worker). The source sends, per tensor, a small header then its bytes in
1 MiB messages, each a fresh ``bytes`` copied out of one buffer (a worker too copies every chunk out of its
tensor). Run inside bench hosts: ``serve_sink`` / ``serve_relay`` in two, ``stream`` in a third.
"""

from __future__ import annotations

from concurrent import futures

import grpc

CHUNK = 1 << 20
METHOD = "/msparity.bench.Bare/Put"
OPTIONS = [("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
_servers: list = []  # keep them alive in this host
_channels: dict = {}


def _serve(behaviour) -> str:
    handler = grpc.method_handlers_generic_handler(
        "msparity.bench.Bare", {"Put": grpc.stream_unary_rpc_method_handler(behaviour)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    _servers.append(server)
    return f"127.0.0.1:{port}"


def _count(messages, context) -> bytes:
    total = 0
    for message in messages:
        total += len(message)
    return total.to_bytes(8, "little")


def serve_sink() -> str:
    return _serve(_count)


def serve_relay(sink: str) -> str:
    channel = grpc.insecure_channel(sink, options=OPTIONS)
    forward = channel.stream_unary(METHOD)
    _servers.append(channel)
    return _serve(lambda messages, context: forward(messages))


def _messages(sizes: list[int]):
    buffer = memoryview(bytearray(b"\x01" * (16 * CHUNK)))
    offset = 0
    for i, nbytes in enumerate(sizes):
        yield f"tensor {i} float32 {nbytes}".encode().ljust(64)
        left = nbytes
        while left:
            n = min(CHUNK, left)
            if offset + n > len(buffer):
                offset = 0
            yield bytes(buffer[offset:offset + n])
            offset += n
            left -= n


def stream(address: str, sizes: list[int]) -> int:
    """Send tensors of these byte counts to the server at address; the byte count it acknowledged."""
    if address not in _channels:  # connected once, as a session's channel is
        channel = grpc.insecure_channel(address, options=OPTIONS)
        grpc.channel_ready_future(channel).result(timeout=30)
        _channels[address] = channel.stream_unary(METHOD)
    return int.from_bytes(_channels[address](_messages(sizes)), "little")
