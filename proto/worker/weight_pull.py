"""A worker reading another worker's weights itself (PullWeights): the weight stream crosses one hop, source to
target, and the coordinator sends only the plan. Where the target cannot reach the source, it says so in the
error's first words (SOURCE_UNREACHABLE) and the coordinator streams through itself instead."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import grpc

from proto import codec, service, transport, worker_pb2
from proto.codec import NamedArray
from proto.errors import FailedPrecondition
from proto.weights.weight_plan import WeightMapping, WeightPlan

SOURCE_UNREACHABLE = "cannot reach the source worker"
CONNECT_S = 5.0


def plan_of(mappings) -> WeightPlan:
    """The plan a PullWeights request carries (its mappings; nothing dropped on this side)."""
    return WeightPlan(tuple(WeightMapping(m.pt_name, m.ms_name, m.transform or "identity") for m in mappings), ())


def _first_state(channel: grpc.Channel):
    """READY, or the first failure (a refused connection fails at once), or None after CONNECT_S."""
    settled, seen = threading.Event(), []

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                     grpc.ChannelConnectivity.SHUTDOWN):
            seen.append(state)
            settled.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        settled.wait(CONNECT_S)
    finally:
        channel.unsubscribe(watch)
    return seen[0] if seen else None


_channels: dict[tuple[str, bytes, str], grpc.Channel] = {}
_channels_lock = threading.Lock()


def _channel(source: str, tls_ca: bytes, server_name: str) -> grpc.Channel:
    """One channel per source, kept: the next sync reuses its connection (closing one costs 0.2 s in grpcio)."""
    key = (source, tls_ca, server_name)
    with _channels_lock:
        if key not in _channels:
            options = list(transport.CHANNEL_OPTIONS)
            if tls_ca:
                if server_name:
                    options.append(("grpc.ssl_target_name_override", server_name))
                credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
                _channels[key] = grpc.secure_channel(source, credentials, options=options)
            else:
                _channels[key] = grpc.insecure_channel(source, options=options)
        return _channels[key]


def pulled(source: str, names: Sequence[str], token: str, tls_ca: bytes, server_name: str,
           place: codec.Place | None = None, waiting=lambda frames: frames) -> Iterator[NamedArray]:
    """The named tensors of the worker at source, streamed one at a time (each where place says: codec.decode).
    ``waiting`` wraps the incoming frames (the servicer releases its lock while each is on its way)."""
    return codec.decode(waiting(_frames(source, names, token, tls_ca, server_name)), place=place)


def _frames(source: str, names: Sequence[str], token: str, tls_ca: bytes, server_name: str):
    channel = _channel(source, tls_ca, server_name)
    metadata = transport.call_metadata(transport.Security(token=token or None))
    state = _first_state(channel)
    if state is not grpc.ChannelConnectivity.READY:
        raise FailedPrecondition(f"{SOURCE_UNREACHABLE} at {source} ({state.name.lower() if state else 'no answer'} "
                                 f"within {CONNECT_S:g} s)")
    stub = service.worker_stub(channel)
    responses = stub.GetWeights(worker_pb2.GetWeightsRequest(names=list(names)), metadata=metadata)
    try:
        yield from responses
    except grpc.RpcError as exc:
        raise FailedPrecondition(f"reading the weights of the source worker at {source} failed: "
                                 f"{exc.code().name}: {exc.details()}") from None
