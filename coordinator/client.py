"""WorkerClient: the worker interface over gRPC. The one place RpcError becomes WorkerError."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import grpc
import numpy as np

from coordinator.errors import WorkerError
from proto import codec, transport, worker_pb2, worker_pb2_grpc
from proto.codec import NamedArray
from proto.formats.npy_files import NpyEntry
from proto.worker.interface import (
    ModuleSpec,
    ParameterListing,
    ParameterSpec,
    SetWeightsResult,
    TensorSpec,
    TrainOptions,
    WorkerDescription,
)
from proto.worker.module_records import ModuleCall, TensorSummary

CONNECT_TIMEOUT_S = 15.0
UNARY_TIMEOUT_S = 120.0
STREAM_TIMEOUT_S = 24 * 3600.0  # long transfers are bounded by keepalive, not by a deadline


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
    """Dials one worker; offers describe/seed/list_parameters/get_weights/set_weights/forward."""

    def __init__(self, address: str, role: str, security: transport.Security = transport.Security()):
        self.address = address
        self.role = role
        self.label = f"{role} worker at {address}"
        self._metadata = transport.call_metadata(security)
        self._channel = transport.make_channel(address, security)
        self._stub = worker_pb2_grpc.WorkerStub(self._channel)
        self._closed = threading.Event()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _error(self, rpc: str, exc: grpc.RpcError) -> WorkerError:
        status = exc.code()
        details = exc.details() or ""
        if status == grpc.StatusCode.UNAVAILABLE or (status == grpc.StatusCode.DEADLINE_EXCEEDED and rpc == "Describe"):
            details = f"cannot reach it ({details}); is the worker running and is the address right?"
        elif status == grpc.StatusCode.DEADLINE_EXCEEDED:
            details = f"no answer in time ({details})"
        return WorkerError(self.label, rpc, status.name if status else "UNKNOWN", details)

    def _unary(self, rpc: str, request, timeout: float = UNARY_TIMEOUT_S, wait_for_ready: bool = False):
        try:
            return getattr(self._stub, rpc)(
                request, timeout=timeout, metadata=self._metadata, wait_for_ready=wait_for_ready
            )
        except grpc.RpcError as exc:
            raise self._error(rpc, exc) from None

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
        return WorkerDescription(
            framework=reply.framework,
            framework_version=reply.framework_version,
            python_version=reply.python_version,
            device=reply.device,
            protocol_version=reply.protocol_version,
            model_spec=reply.model_spec,
            model_class=reply.model_class,
            parameter_count=reply.parameter_count,
            parameter_elements=reply.parameter_elements,
            example_inputs=tuple(TensorSpec(s.name, s.dtype, tuple(s.shape)) for s in reply.example_inputs),
            hostname=reply.hostname,
            execution_mode=reply.execution_mode,
            factory_loss=reply.factory_loss,
            factory_optimizer=reply.factory_optimizer,
        )

    def seed(self, seed: int) -> None:
        self._unary("Seed", worker_pb2.SeedRequest(seed=seed))

    def list_parameters(self) -> ParameterListing:
        reply = self._unary("ListParameters", worker_pb2.ListParametersRequest())
        return ParameterListing(
            parameters=tuple(
                ParameterSpec(
                    name=p.name,
                    dtype=p.dtype,
                    shape=tuple(p.shape),
                    module_path=p.module_path,
                    module_type=p.module_type,
                    trainable=p.trainable,
                    is_buffer=p.is_buffer,
                    module_rule_type=p.module_rule_type,
                )
                for p in reply.parameters
            ),
            modules=tuple(ModuleSpec(m.path, m.type, m.rule_type) for m in reply.modules),
        )

    def get_weights(self, names: Sequence[str] = ()) -> Iterator[NamedArray]:
        """Stream the named weights (all when empty), one NamedArray at a time."""
        responses = self._stub.GetWeights(
            worker_pb2.GetWeightsRequest(names=list(names)), timeout=STREAM_TIMEOUT_S, metadata=self._metadata
        )
        return self._decoded("GetWeights", responses)

    def set_weights(self, tensors: Iterable[NamedArray], strict: bool = False) -> SetWeightsResult:
        """Stream tensors into the worker's net as they come; returns what was loaded."""
        errors = _RequestErrors()

        def requests():
            yield worker_pb2.SetWeightsRequest(options=worker_pb2.SetWeightsOptions(strict=strict))
            for chunk in codec.encode(errors.guard(tensors)):
                yield worker_pb2.SetWeightsRequest(chunk=chunk)

        try:
            reply = self._stub.SetWeights(requests(), timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        except grpc.RpcError as exc:
            if errors.error is not None:
                raise errors.error from None
            raise self._error("SetWeights", exc) from None
        return SetWeightsResult(loaded=reply.loaded, missing=tuple(reply.missing))

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> list[NamedArray]:
        """Run the net on inputs; returns its flattened outputs."""

        def requests():
            yield worker_pb2.ForwardRequest(options=worker_pb2.ForwardOptions(train_mode=train_mode))
            for chunk in codec.encode(inputs):
                yield worker_pb2.ForwardRequest(chunk=chunk)

        responses = self._stub.Forward(requests(), timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        return list(self._decoded("Forward", responses))

    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions) -> Iterator[NamedArray]:
        """Run one training step on the worker; streams back loss, grads, and state / moments when asked."""

        def requests():
            yield worker_pb2.TrainStepRequest(options=worker_pb2.TrainOptions(
                loss=options.loss, optimizer=options.optimizer, lr=options.lr, reset=options.reset,
                return_state=options.return_state, return_moments=options.return_moments))
            for chunk in codec.encode([*inputs, target]):
                yield worker_pb2.TrainStepRequest(chunk=chunk)

        responses = self._stub.TrainStep(requests(), timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        return self._decoded("TrainStep", responses)

    def record(self, inputs: Sequence[NamedArray], sketch_size: int, sketch_seed: int, float64_reference: bool):
        """One hooked forward on the worker: (calls, float64 reference calls, why no reference)."""

        def requests():
            yield worker_pb2.RecordRequest(options=worker_pb2.RecordOptions(
                sketch_size=sketch_size, sketch_seed=sketch_seed, float64_reference=float64_reference))
            for chunk in codec.encode(inputs):
                yield worker_pb2.RecordRequest(chunk=chunk)

        try:
            reply = self._stub.Record(requests(), timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error("Record", exc) from None
        return ([call_from_pb(c) for c in reply.calls], [call_from_pb(c) for c in reply.reference_calls],
                reply.reference_note)

    def get_activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool) -> Iterator[NamedArray]:
        """Stream the recorded tensors of the calls asked for."""
        responses = self._stub.GetActivations(
            worker_pb2.GetActivationsRequest(run=run, keys=list(keys), inputs=inputs, outputs=outputs),
            timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        return self._decoded("GetActivations", responses)

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray]) -> list[NamedArray]:
        """Replay one recorded module / cell call on the tensors given."""

        def requests():
            yield worker_pb2.RunModuleRequest(options=worker_pb2.RunModuleOptions(path=path, call=call, float64=float64))
            for chunk in codec.encode(inputs):
                yield worker_pb2.RunModuleRequest(chunk=chunk)

        responses = self._stub.RunModule(requests(), timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        return list(self._decoded("RunModule", responses))

    def list_dir(self, path: str) -> tuple[str, list[NpyEntry]]:
        """The resolved path of a served directory and its .npy files (described by header)."""
        reply = self._unary("ListDir", worker_pb2.ListDirRequest(path=path))
        return reply.path, [NpyEntry(e.name, e.dtype, tuple(e.shape), e.nbytes, e.ctime) for e in reply.entries]

    def get_tensors(self, path: str, names: Sequence[str]) -> Iterator[NamedArray]:
        """Stream the named .npy files of a served directory, in the order given."""
        responses = self._stub.GetTensors(worker_pb2.GetTensorsRequest(path=path, names=list(names)),
                                          timeout=STREAM_TIMEOUT_S, metadata=self._metadata)
        return self._decoded("GetTensors", responses)


def _summary_from_pb(s) -> TensorSummary:
    return TensorSummary(name=s.name, dtype=s.dtype, shape=tuple(s.shape), min=s.min, max=s.max, mean=s.mean,
                         norm=s.norm, finite=s.finite, sketch=np.asarray(s.sketch, dtype=np.float64),
                         sketch_seed=s.sketch_seed)


def call_from_pb(c) -> ModuleCall:
    """A ModuleCall wire message as proto.worker.module_records.ModuleCall."""
    return ModuleCall(path=c.path, type=c.type, rule_type=c.rule_type, call=c.call, start=c.start, end=c.end,
                      inputs=tuple(_summary_from_pb(s) for s in c.inputs),
                      outputs=tuple(_summary_from_pb(s) for s in c.outputs), param_names=tuple(c.param_names))
