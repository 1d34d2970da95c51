"""WorkerClient: the worker interface over gRPC. The one place RpcError becomes WorkerError."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence

import grpc

from proto import codec, messages, service, transport, worker_pb2
from proto.codec import NamedArray, TensorSpec
from proto.errors import WorkerError
from proto.worker.interface import (
    DirListing,
    EndSessionResult,
    ForwardResult,
    ParameterListing,
    RecordOptions,
    RecordResult,
    SetWeightsResult,
    TrainOptions,
    WorkerDescription,
)
from proto.worker.rank_job import SEQ_METADATA
from proto.worker.sessions import READ_ONLY

CONNECT_TIMEOUT_S = 15.0
UNARY_TIMEOUT_S = 120.0
STREAM_TIMEOUT_S = 24 * 3600.0  # long transfers are bounded by keepalive (a dead or stopped peer), not by a deadline
COMPUTE_TIMEOUT_S = 600.0  # Forward, TrainStep, Record, RunModule: a worker alive but hung answers keepalive
COMPUTE_RPCS = frozenset({"Forward", "TrainStep", "Record", "RunModule"})
END_SESSION_TIMEOUT_S = 3.0


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "someone"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


# one session per coordinator process: its clients of one worker share it (proto/worker/sessions.py)
SESSION_METADATA = (("msparity-session", uuid.uuid4().hex), ("msparity-client", _who()))


class _RequestErrors:
    """Remembers an exception raised by a request iterator, which gRPC reports only as CANCELLED."""

    def __init__(self):
        self.error: BaseException | None = None

    def guard(self, iterator: Iterable) -> Iterator:
        try:
            yield from iterator
        except Exception as exc:
            self.error = exc
            raise


class WorkerClient:
    """Dials one worker; offers every method of the worker interface (proto.worker.interface.Worker)."""

    def __init__(self, address: str, role: str, security: transport.Security = transport.Security(),
                 timeout: float | None = None):
        """``timeout``: seconds any call may take (--timeout); default COMPUTE_TIMEOUT_S for the net's work,
        UNARY_TIMEOUT_S for small calls, none but keepalive for weight and tensor streams."""
        self.address = address
        self.security = security
        self.timeout = timeout
        self.role = role
        self.label = f"{role} worker at {address}"
        self._base_metadata = transport.call_metadata(security) + SESSION_METADATA
        self._call_extra = threading.local()  # per thread: the sequence number of an ordered call (rank groups)
        self._tls = security.tls
        self._channel = transport.make_channel(address, security)
        self._stub = service.worker_stub(self._channel)
        self._closed = threading.Event()
        self._unreachable = False  # a call found it gone: nothing to end a session on
        self._claimed = False  # a call that takes the worker's session was made (proto/worker/sessions.py)

    @property
    def _metadata(self) -> tuple:
        return self._base_metadata + getattr(self._call_extra, "items", ())

    @contextlib.contextmanager
    def ordered(self, seq: int):
        """Calls made inside (in this thread) carry sequence number seq: one rank of a group runs them in order."""
        self._call_extra.items = ((SEQ_METADATA, str(seq)),)
        try:
            yield self
        finally:
            self._call_extra.items = ()

    def close(self) -> None:
        """End this process's session on the worker (it outlives us when started by hand), then hang up."""
        if not self._closed.is_set():
            self._closed.set()
            if self._claimed:
                with contextlib.suppress(WorkerError):
                    self.end_session()
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _error(self, rpc: str, exc: grpc.RpcError) -> WorkerError:
        status = exc.code()
        details = exc.details() or ""
        self._unreachable = self._unreachable or status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        if status == grpc.StatusCode.UNAVAILABLE or (status == grpc.StatusCode.DEADLINE_EXCEEDED and rpc == "Describe"):
            details = f"cannot reach it ({details}); is the worker running and is the address right?"
            if not self._tls:
                details += " (a worker started with --tls-cert needs --tls-ca here)"
        elif status == grpc.StatusCode.DEADLINE_EXCEEDED:
            seconds = self._deadline(rpc, UNARY_TIMEOUT_S)
            details = (f"no answer within {seconds:g} s ({details}): the worker is alive (it answers keepalive) but "
                       f"its {rpc} has not finished: a hang, or work that needs a larger --timeout")
        return WorkerError(self.label, rpc, status.name if status else "UNKNOWN", details)

    def _deadline(self, rpc: str, default: float) -> float:
        """The deadline of a call about to be made (every call asks): --timeout, else the kind's default."""
        self._claimed = self._claimed or rpc not in READ_ONLY
        if self.timeout is not None:
            return self.timeout
        return COMPUTE_TIMEOUT_S if rpc in COMPUTE_RPCS else default

    def _unary(self, rpc: str, request, timeout: float = UNARY_TIMEOUT_S, wait_for_ready: bool = False):
        try:
            return getattr(self._stub, rpc)(
                request, timeout=self._deadline(rpc, timeout) if rpc != "Describe" else timeout,
                metadata=self._metadata, wait_for_ready=wait_for_ready
            )
        except grpc.RpcError as exc:
            raise self._error(rpc, exc) from None

    def _stream_in(self, rpc: str, request_type, options, tensors: Iterable[NamedArray]):
        """Call a client-streaming RPC with (options, tensors...); its reply message.

        An error raised by the tensors' iterator (the caller's own code) is re-raised as it was,
        not as the CANCELLED status gRPC makes of it.
        """
        errors = _RequestErrors()
        requests = messages.requests_with_options(request_type, options, errors.guard(tensors))
        try:
            return getattr(self._stub, rpc)(requests, timeout=self._deadline(rpc, STREAM_TIMEOUT_S),
                                            metadata=self._metadata)
        except grpc.RpcError as exc:
            if errors.error is not None:
                raise errors.error from None
            raise self._error(rpc, exc) from None

    def _stream_out(self, rpc: str, request) -> Iterator[NamedArray]:
        """Call an RPC whose reply is a tensor stream (request: a message, or an iterator of them)."""
        responses = getattr(self._stub, rpc)(request, timeout=self._deadline(rpc, STREAM_TIMEOUT_S),
                                             metadata=self._metadata)
        return self._decoded(rpc, responses)

    def _decoded(self, rpc: str, responses) -> Iterator[NamedArray]:
        try:
            yield from codec.decode(responses)
        except grpc.RpcError as exc:
            raise self._error(rpc, exc) from None
        except codec.CodecError as exc:
            responses.cancel()
            raise WorkerError(self.label, rpc, "BAD_STREAM", str(exc)) from None

    def describe(self, connect_timeout: float = CONNECT_TIMEOUT_S) -> WorkerDescription:
        """Describe the worker; waits up to connect_timeout for it to come up."""
        reply = self._unary("Describe", worker_pb2.DescribeRequest(), timeout=connect_timeout, wait_for_ready=True)
        return messages.description_from_pb(reply)

    def seed(self, seed: int) -> None:
        self._unary("Seed", worker_pb2.SeedRequest(seed=seed))

    def list_parameters(self) -> ParameterListing:
        return messages.listing_from_pb(self._unary("ListParameters", worker_pb2.ListParametersRequest()))

    def get_weights(self, names: Sequence[str] = ()) -> Iterator[NamedArray]:
        """Stream the named weights (all when empty), one NamedArray at a time."""
        return self._stream_out("GetWeights", worker_pb2.GetWeightsRequest(names=list(names)))

    def weight_digests(self, names: Sequence[str] = ()) -> list[tuple[TensorSpec, bytes]]:
        """Each named weight's spec and digest (proto.codec.digest_of), computed on the worker: nothing moved."""
        reply = self._unary("GetWeightDigests", worker_pb2.GetWeightsRequest(names=list(names)))
        return [(messages.spec_from_pb(d.spec), d.digest) for d in reply.digests]

    def set_weights(self, tensors: Iterable[NamedArray], strict: bool = False) -> SetWeightsResult:
        """Stream tensors into the worker's net as they come; returns what was loaded."""
        reply = self._stream_in("SetWeights", worker_pb2.SetWeightsRequest,
                                messages.set_weights_options_to_pb(strict), tensors)
        return messages.set_weights_result_from_pb(reply)

    def pull_weights(self, source: WorkerClient, mappings, strict: bool = False) -> SetWeightsResult:
        """This worker reads the weights from the source worker itself, setting them by mappings (pt_name, ms_name,
        transform): one hop. The source is dialled at the address we dial it by, with its token and TLS CA."""
        security = source.security
        request = worker_pb2.PullWeightsRequest(
            source=source.address, strict=strict, source_token=security.token or "",
            source_tls_ca=security.tls_ca.read_bytes() if security.tls_ca else b"",
            source_tls_server_name=security.tls_server_name or "",
            mappings=[worker_pb2.WeightMappingInfo(pt_name=m.pt_name, ms_name=m.ms_name, transform=m.transform)
                      for m in mappings])
        return messages.set_weights_result_from_pb(self._unary("PullWeights", request, timeout=STREAM_TIMEOUT_S))

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> ForwardResult:
        """Run the net on inputs; returns its flattened outputs and the non-tensor leaves it left out."""
        requests = messages.requests_with_options(worker_pb2.ForwardRequest,
                                                  messages.forward_options_to_pb(train_mode), inputs)
        responses = self._stub.Forward(requests, timeout=self._deadline("Forward", STREAM_TIMEOUT_S),
                                       metadata=self._metadata)
        outputs = tuple(self._decoded("Forward", responses))
        return ForwardResult(outputs, messages.skipped_from_metadata(responses.trailing_metadata()))

    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions) -> Iterator[NamedArray]:
        """Run one training step on the worker; streams back loss, grads, and state / moments when asked."""
        requests = messages.requests_with_options(worker_pb2.TrainStepRequest, messages.train_options_to_pb(options),
                                                  [*inputs, target])
        return self._stream_out("TrainStep", requests)

    def record(self, inputs: Sequence[NamedArray], options: RecordOptions) -> RecordResult:
        """One hooked forward on the worker: every call's summaries, and the float64 reference's."""
        reply = self._stream_in("Record", worker_pb2.RecordRequest, messages.record_options_to_pb(options), inputs)
        return messages.record_result_from_pb(reply)

    def get_activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool) -> Iterator[NamedArray]:
        """Stream the recorded tensors of the calls asked for."""
        return self._stream_out("GetActivations", messages.activations_request_to_pb(run, keys, inputs, outputs))

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray],
                   backward: bool = False) -> list[NamedArray]:
        """Replay one recorded module / cell call (its backward: forward inputs, then grad0... wrt its outputs)."""
        requests = messages.requests_with_options(worker_pb2.RunModuleRequest,
                                                  messages.run_module_options_to_pb(path, call, float64, backward),
                                                  inputs)
        return list(self._stream_out("RunModule", requests))

    def get_example_inputs(self) -> Iterator[NamedArray]:
        """Stream the factory's example inputs with their values."""
        return self._stream_out("GetExampleInputs", worker_pb2.GetExampleInputsRequest())

    def end_session(self) -> EndSessionResult:
        """End this process's session on the worker: weights its training changed go back, others may use it."""
        if self._unreachable:
            return EndSessionResult(0, "the worker was unreachable")
        return messages.end_session_from_pb(self._unary("EndSession", worker_pb2.EndSessionRequest(),
                                                        timeout=END_SESSION_TIMEOUT_S))

    def list_dir(self, path: str) -> DirListing:
        """The resolved path of a served directory and its .npy files (described by header)."""
        return messages.dir_listing_from_pb(self._unary("ListDir", worker_pb2.ListDirRequest(path=path)))

    def get_tensors(self, path: str, names: Sequence[str]) -> Iterator[NamedArray]:
        """Stream the named .npy files of a served directory, in the order given."""
        return self._stream_out("GetTensors", worker_pb2.GetTensorsRequest(path=path, names=list(names)))
