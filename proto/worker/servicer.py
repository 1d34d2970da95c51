"""One gRPC servicer for both frameworks: protobuf <-> numpy around a WorkerAdapter.

Framework calls are serialised with one lock (a net is not thread-safe); streams take the lock per
tensor so an abandoned stream never blocks the worker. Every failure becomes a status whose
details name the worker, the RPC and the problem in one line.
"""

from __future__ import annotations

import functools
import logging
import platform
import socket
import threading
from collections.abc import Iterator

import grpc

from proto import codec, errors, worker_pb2, worker_pb2_grpc
from proto.formats.npy_files import NpyFileError, ServedRoots, load_npy
from proto.tensor_pb2 import TensorSpec as TensorSpecPb
from proto.worker.interface import LOSSES, OPTIMIZERS, PROTOCOL_VERSION, TARGET_NAME, TrainOptions, WorkerAdapter

log = logging.getLogger("msparity.worker")
_END = object()


def _rpc(method):
    """Run an RPC body; turn any exception into an aborted call with a one-line detail."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:  # every failure must reach the caller as a status
            self._abort(context, method.__name__, exc)

    return wrapper


def _streaming_rpc(method):
    """As _rpc, for RPCs that return a stream (generators fail while being consumed)."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            yield from method(self, request, context)
        except Exception as exc:
            self._abort(context, method.__name__, exc)

    return wrapper


def _stream_items(requests, kind: str):
    """Split a stream of (options | chunk) requests into the options and an iterator of chunks."""
    first = next(requests, None)
    if first is None or first.WhichOneof("item") != "options":
        options = None
        pending = [first] if first is not None else []
    else:
        options = getattr(first, "options")
        pending = []

    def chunks():
        for item in pending:
            yield _chunk_of(item, kind)
        for item in requests:
            yield _chunk_of(item, kind)

    return options, chunks()


def _options_and_tensors(requests, kind: str):
    """The required options message and every tensor of an (options, chunks...) stream, decoded."""
    options, chunks = _stream_items(requests, kind)
    if options is None:
        raise errors.BadRequest(f"{kind}: the first message must carry the options")
    return options, list(codec.decode(chunks))


def _chunk_of(item, kind: str):
    if item.WhichOneof("item") != "chunk":
        raise errors.BadRequest(f"{kind}: options may only come first in the stream")
    return item.chunk


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    """Serves one adapter (one model) over the Worker service."""

    def __init__(self, adapter: WorkerAdapter | None, worker_name: str, served: ServedRoots | None = None):
        self._model = adapter
        self._name = worker_name
        self._served = served or ServedRoots([])
        self._lock = threading.Lock()

    @property
    def _adapter(self) -> WorkerAdapter:
        if self._model is None:
            raise errors.FailedPrecondition("this worker serves directories only; start it with --model SPEC "
                                            "to compare or convert a net")
        return self._model

    def _abort(self, context, rpc: str, exc: BaseException):
        code, detail = errors.status_for(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("%s failed", rpc)
        context.abort(code, f"{self._name} worker {rpc}: {detail}")

    def _unlocked_while_waiting(self, iterator: Iterator):
        """Items of an incoming stream; the caller holds the lock, which is released while waiting for each.

        A SetWeights stream may be fed by this very worker's GetWeights (weights streamed back into
        the net they came from); holding the lock while waiting on the network would deadlock.
        """
        while True:
            self._lock.release()
            try:
                item = next(iterator, _END)
            finally:
                self._lock.acquire()
            if item is _END:
                return
            yield item

    def _locked(self, iterator: Iterator):
        """Iterate under the lock one item at a time."""
        while True:
            with self._lock:
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item

    @_rpc
    def Describe(self, request, context):
        if self._model is None:
            return self._describe_without_model()
        with self._lock:
            d = self._adapter.describe()
        return worker_pb2.DescribeReply(
            framework=d.framework,
            framework_version=d.framework_version,
            python_version=d.python_version,
            device=d.device,
            protocol_version=d.protocol_version,
            model_spec=d.model_spec,
            model_class=d.model_class,
            parameter_count=d.parameter_count,
            parameter_elements=d.parameter_elements,
            example_inputs=[TensorSpecPb(name=s.name, dtype=s.dtype, shape=s.shape) for s in d.example_inputs],
            hostname=d.hostname,
            execution_mode=d.execution_mode,
            factory_loss=d.factory_loss,
            factory_optimizer=d.factory_optimizer,
        )

    @_rpc
    def Seed(self, request, context):
        with self._lock:
            self._adapter.seed(request.seed)
        return worker_pb2.SeedReply()

    @_rpc
    def ListParameters(self, request, context):
        with self._lock:
            listing = self._adapter.list_parameters()
        return worker_pb2.ListParametersReply(
            parameters=[
                worker_pb2.ParameterInfo(
                    name=p.name,
                    dtype=p.dtype,
                    shape=p.shape,
                    module_path=p.module_path,
                    module_type=p.module_type,
                    trainable=p.trainable,
                    is_buffer=p.is_buffer,
                    module_rule_type=p.module_rule_type,
                )
                for p in listing.parameters
            ],
            modules=[worker_pb2.ModuleInfo(path=m.path, type=m.type, rule_type=m.rule_type) for m in listing.modules],
        )

    @_streaming_rpc
    def GetWeights(self, request, context):
        with self._lock:
            tensors = self._adapter.get_weights(list(request.names))
        yield from codec.encode(self._locked(iter(tensors)))

    @_rpc
    def SetWeights(self, request_iterator, context):
        options, chunks = _stream_items(request_iterator, "SetWeights")
        strict = bool(options and options.strict)
        # Decoding happens as the adapter pulls tensors, so weights are applied while they stream;
        # the lock is held while a tensor is applied, not while the next one is on its way.
        with self._lock:
            result = self._adapter.set_weights(self._unlocked_while_waiting(codec.decode(chunks)), strict=strict)
        return worker_pb2.SetWeightsReply(loaded=result.loaded, missing=list(result.missing))

    @_streaming_rpc
    def Forward(self, request_iterator, context):
        options, chunks = _stream_items(request_iterator, "Forward")
        inputs = list(codec.decode(chunks))
        with self._lock:
            outputs = self._adapter.forward(inputs, train_mode=bool(options and options.train_mode))
        yield from codec.encode(outputs)

    @_streaming_rpc
    def TrainStep(self, request_iterator, context):
        options, tensors = _options_and_tensors(request_iterator, "TrainStep")
        train_options = train_options_from(options)
        targets = [t for t in tensors if t.name == TARGET_NAME]
        if len(targets) != 1:
            raise errors.BadRequest(f"TrainStep: send exactly one tensor named {TARGET_NAME!r} besides the inputs")
        inputs = [t for t in tensors if t.name != TARGET_NAME]
        with self._lock:
            results = self._adapter.train_step(inputs, targets[0], train_options)
        # The step runs as the first result is pulled; each pull holds the lock, so no other call interleaves.
        yield from codec.encode(self._locked(iter(results)))

    @_rpc
    def Record(self, request_iterator, context):
        options, inputs = _options_and_tensors(request_iterator, "Record")
        with self._lock:
            calls, reference, note = self._adapter.record(inputs, options.sketch_size, options.sketch_seed,
                                                          options.float64_reference)
        return worker_pb2.RecordReply(calls=[call_to_pb(c) for c in calls],
                                      reference_calls=[call_to_pb(c) for c in reference], reference_note=note)

    @_streaming_rpc
    def GetActivations(self, request, context):
        with self._lock:
            tensors = self._adapter.get_activations(request.run, list(request.keys), request.inputs, request.outputs)
        yield from codec.encode(self._locked(iter(tensors)))

    @_streaming_rpc
    def RunModule(self, request_iterator, context):
        options, inputs = _options_and_tensors(request_iterator, "RunModule")
        with self._lock:
            outputs = self._adapter.run_module(options.path, options.call, options.float64, inputs)
        yield from codec.encode(outputs)

    def _describe_without_model(self):
        framework = {"pt": "pytorch", "ms": "mindspore"}.get(self._name, self._name)
        return worker_pb2.DescribeReply(framework=framework, python_version=platform.python_version(),
                                        protocol_version=PROTOCOL_VERSION, hostname=socket.gethostname(),
                                        model_spec="", model_class="(no model: serves directories)")

    @_rpc
    def ListDir(self, request, context):
        try:
            directory, entries = self._served.list_dir(request.path)
        except NpyFileError as exc:
            raise errors.FailedPrecondition(str(exc)) from None
        return worker_pb2.ListDirReply(path=str(directory), entries=[
            worker_pb2.DirEntry(name=e.name, dtype=e.dtype, shape=e.shape, nbytes=e.nbytes, ctime=e.ctime)
            for e in entries])

    @_streaming_rpc
    def GetTensors(self, request, context):
        directory = self._served.resolve_dir(request.path)
        files = [self._served.resolve_file(directory, name) for name in request.names]  # refuse before streaming

        def arrays():
            for name, path in zip(request.names, files):
                try:
                    yield load_npy(path, name)
                except NpyFileError as exc:
                    raise errors.FailedPrecondition(str(exc)) from None

        yield from codec.encode(arrays())


def summary_to_pb(s) -> worker_pb2.TensorSummary:
    return worker_pb2.TensorSummary(name=s.name, dtype=s.dtype, shape=s.shape, min=s.min, max=s.max, mean=s.mean,
                                    norm=s.norm, finite=s.finite, sketch=s.sketch.tolist(), sketch_seed=s.sketch_seed)


def call_to_pb(c) -> worker_pb2.ModuleCall:
    """A proto.worker.module_records.ModuleCall as its wire message."""
    return worker_pb2.ModuleCall(path=c.path, type=c.type, rule_type=c.rule_type, call=c.call, start=c.start,
                                 end=c.end, inputs=[summary_to_pb(s) for s in c.inputs],
                                 outputs=[summary_to_pb(s) for s in c.outputs], param_names=list(c.param_names))


def train_options_from(options) -> TrainOptions:
    """Check a TrainOptions message and turn it into the adapter's dataclass."""
    if options.loss not in LOSSES:
        raise errors.BadRequest(f"TrainStep: unknown loss {options.loss!r}; known: {', '.join(LOSSES)}")
    if options.optimizer not in OPTIMIZERS:
        raise errors.BadRequest(f"TrainStep: unknown optimizer {options.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if not options.lr > 0:
        raise errors.BadRequest(f"TrainStep: the learning rate must be positive, got {options.lr}")
    return TrainOptions(loss=options.loss, optimizer=options.optimizer, lr=options.lr, reset=options.reset,
                        return_state=options.return_state, return_moments=options.return_moments)


def add_to_server(server: grpc.Server, adapter: WorkerAdapter | None, worker_name: str,
                  served: ServedRoots | None = None) -> WorkerServicer:
    """Register a servicer for adapter (None: directories only) and the served roots on server."""
    servicer = WorkerServicer(adapter, worker_name, served)
    worker_pb2_grpc.add_WorkerServicer_to_server(servicer, server)
    return servicer
