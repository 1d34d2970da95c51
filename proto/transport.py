"""gRPC server and channel factories: message limits, keepalive, shared token and TLS.

Both ends use these so their options agree. A shared token travels as call metadata and is
compared in constant time; TLS uses a server certificate/key and, on the client, a CA bundle.
"""

from __future__ import annotations

import hmac
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

TOKEN_METADATA_KEY = "x-msparity-token"
MAX_MESSAGE_BYTES = 64 << 20  # chunks are ~1 MiB; this leaves room for big listings

# Keepalive so a dead peer (cut link, killed host) is noticed in seconds, not at TCP timeout.
_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 2_000),
    ("grpc.keepalive_timeout_ms", 4_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
_LIMITS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
SERVER_OPTIONS = _LIMITS + _KEEPALIVE + [
    ("grpc.http2.min_ping_interval_without_data_ms", 1_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1_000),
    ("grpc.so_reuseport", 0),
]
CHANNEL_OPTIONS = _LIMITS + _KEEPALIVE + [
    # without these the client sends a keepalive ping at most every few minutes while it waits on a reply
    # (no data flowing): a stopped worker was noticed after 72 s; now in about 6 s
    ("grpc.http2.min_sent_ping_interval_without_data_ms", 1_000),
    ("grpc.http2.min_time_between_pings_ms", 1_000),
    ("grpc.http2.ping_timeout_ms", 4_000),  # gRPC >= 1.6x waits 60 s for a ping's answer, whatever keepalive says
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]


@dataclass(frozen=True)
class Security:
    """Token and TLS settings shared by a worker and the coordinator."""

    token: str | None = None
    tls_cert: Path | None = None  # server: its certificate (PEM)
    tls_key: Path | None = None  # server: its private key (PEM)
    tls_ca: Path | None = None  # client: CA bundle that signed the server's certificate
    tls_server_name: str | None = None  # client: name to check in the server certificate

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert or self.tls_ca)


_UNAUTHENTICATED_DETAIL = "wrong or missing token; start the coordinator with the worker's token (--token or MSPARITY_TOKEN)"
_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _deny(_request_or_iterator, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED_DETAIL)


class _TokenInterceptor(grpc.ServerInterceptor):
    """Refuse calls whose token metadata does not match, before any handler runs."""

    def __init__(self, token: str):
        self._token = token.encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        sent = dict(handler_call_details.invocation_metadata or ()).get(TOKEN_METADATA_KEY, "")
        if handler is None or hmac.compare_digest(sent.encode(), self._token):
            return handler
        factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
        return factory(_deny, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)


def make_server(security: Security = Security(), max_workers: int = 8) -> grpc.Server:
    """A gRPC server with our options and, when a token is set, the token check."""
    interceptors = [_TokenInterceptor(security.token)] if security.token else []
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="msparity-rpc"),
        interceptors=interceptors,
        options=SERVER_OPTIONS,
    )


def is_loopback(listen: str) -> bool:
    """Whether a "HOST:PORT" to bind is reachable from this host only (127.x, ::1, localhost)."""
    host = listen.rpartition(":")[0].strip("[]").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def bind(server: grpc.Server, listen: str, security: Security = Security()) -> str:
    """Bind server to listen ("HOST:PORT", port 0 picks one); return the bound "HOST:PORT"."""
    host, _, _ = listen.rpartition(":")
    if security.tls_cert or security.tls_key:
        if not (security.tls_cert and security.tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        credentials = grpc.ssl_server_credentials(
            [(Path(security.tls_key).read_bytes(), Path(security.tls_cert).read_bytes())]
        )
        port = server.add_secure_port(listen, credentials)
    else:
        port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}: address in use or not available on this host")
    return f"{host}:{port}"


# host:port or [v6]:port, as workers are dialled
ADDRESS_PATTERN = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}"


def make_channel(address: str, security: Security = Security()) -> grpc.Channel:
    """A channel to address with our options; TLS when the security settings ask for it."""
    if security.tls:
        root = Path(security.tls_ca).read_bytes() if security.tls_ca else None
        options = list(CHANNEL_OPTIONS)
        if security.tls_server_name:
            options.append(("grpc.ssl_target_name_override", security.tls_server_name))
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root), options=options)
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


def call_metadata(security: Security) -> tuple[tuple[str, str], ...]:
    """Metadata to send with every call."""
    return ((TOKEN_METADATA_KEY, security.token),) if security.token else ()
