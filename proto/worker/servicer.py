"""One gRPC servicer for both frameworks: protobuf <-> the worker interface (proto/messages.py).

Framework calls are serialised with one lock (a net is not thread-safe); streams take the lock per
tensor so an abandoned stream never blocks the worker. Every failure becomes a status whose
details name the worker, the RPC and the problem in one line.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import platform
import socket
import threading
from collections.abc import Iterator

import grpc

from proto import codec, errors, messages, service, worker_pb2, worker_pb2_grpc
from proto.formats.npy_files import ServedRoots
from proto.worker.interface import PROTOCOL_VERSION, TARGET_NAME, DirectoryServer, ModelWorker
from proto.worker.rank_job import ORDERED_RPCS, SEQ_METADATA, RankInfo, SequenceGate
from proto.worker.served_dirs import ServedDirectories
from proto.worker.sessions import SESSION_KEY, Sessions
from proto.worker.weight_pull import plan_of, pulled

log = logging.getLogger("msparity.worker")
_END = object()
FRAMEWORK_OF_ROLE = {"pt": "pytorch", "ms": "mindspore"}


def _rpc(method):
    """Run an RPC body; turn any exception into an aborted call with a one-line detail."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            session = self._sessions.enter(method.__name__, context.invocation_metadata())
            turn = self._wait_turn(method.__name__, session, context)
            try:
                return method(self, request, context)
            finally:
                self._end_turn(session, turn)
                self._sessions.leave(session)
        except Exception as exc:  # every failure must reach the caller as a status
            self._abort(context, method.__name__, exc)

    return wrapper


def _streaming_rpc(method):
    """As _rpc, for RPCs that return a stream (generators fail while being consumed)."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            session = self._sessions.enter(method.__name__, context.invocation_metadata())
            turn = self._wait_turn(method.__name__, session, context)
            try:
                yield from method(self, request, context)
            finally:
                self._end_turn(session, turn)
                self._sessions.leave(session)
        except Exception as exc:
            self._abort(context, method.__name__, exc)

    return wrapper


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    """Serves one model worker (one net) and the directories it was started with over the Worker service."""

    def __init__(self, adapter: ModelWorker | None, worker_name: str, served: DirectoryServer | None = None):
        self._model = adapter
        self._name = worker_name
        self._served = served or ServedDirectories(ServedRoots([]))
        self._lock = threading.Lock()
        self._sessions = Sessions(self._put_back)
        self.ranks: RankInfo | None = None  # one rank of a distributed job (set by join_ranks)
        self._gate: SequenceGate | None = None

    def join_ranks(self, info: RankInfo) -> None:
        """Serve as one rank of a job: Describe names every rank, compute calls run in their sequence order."""
        self.ranks = info
        self._gate = SequenceGate(info.rank, info.world_size) if info.world_size > 1 else None

    def _wait_turn(self, rpc: str, session: str | None, context) -> int | None:
        if self._gate is None or rpc not in ORDERED_RPCS:
            return None
        seq = dict(context.invocation_metadata() or ()).get(SEQ_METADATA)
        return self._gate.wait_turn(session or "", seq, rpc)

    def _end_turn(self, session: str | None, turn: int | None) -> None:
        if turn is not None:
            self._gate.done(session or "", turn)

    def _put_back(self) -> None:
        """A lapsed session is taken over: the weights its training changed go back first."""
        if self._model is not None:
            with self._lock:
                result = self._model.end_session()
            if result.restored:
                log.warning("a lapsed session was taken over: %s", result.note)

    @property
    def _adapter(self) -> ModelWorker:
        if self._model is None:
            raise errors.FailedPrecondition("this worker serves directories only; start it with --model SPEC "
                                            "to compare or convert a net")
        return self._model

    def _abort(self, context, rpc: str, exc: BaseException):
        if not context.is_active():  # the caller cancelled (its own request stream failed): nobody to tell
            log.info("%s: cancelled by the caller (%s)", rpc, type(exc).__name__)
            return
        code, detail = errors.status_for(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("%s failed", rpc)
        context.abort(code, f"{self._name} worker {rpc}: {detail}")

    def _unlocked_while_waiting(self, iterator: Iterator):
        """Items of an incoming stream (chunks); the caller holds the lock, which is released while waiting for each.

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
            description = self._adapter.describe()
        return messages.description_to_pb(self._with_ranks(description))

    def _with_ranks(self, description):
        info = self.ranks
        return dataclasses.replace(description, pid=os.getpid(), **({} if info is None else {
            "rank": info.rank, "world_size": info.world_size, "rank_addresses": info.addresses,
            "launcher": info.launcher}))

    @_rpc
    def Seed(self, request, context):
        with self._lock:
            self._adapter.seed(request.seed)
        return worker_pb2.SeedReply()

    @_rpc
    def ListParameters(self, request, context):
        with self._lock:
            return messages.listing_to_pb(self._adapter.list_parameters())

    @_streaming_rpc
    def GetWeights(self, request, context):
        with self._lock:
            tensors = self._adapter.get_weights(list(request.names))
        yield from codec.encode_frames(self._locked(iter(tensors)))

    @_rpc
    def GetWeightDigests(self, request, context):
        with self._lock:
            digests = self._adapter.weight_digests(list(request.names))
        return worker_pb2.WeightDigestsReply(digests=[worker_pb2.WeightDigest(spec=messages.spec_to_pb(spec),
                                                                              digest=digest)
                                                      for spec, digest in digests])

    @_rpc
    def SetWeights(self, request_iterator, context):
        options, chunks = messages.split_options(request_iterator, "SetWeights")
        strict = messages.set_weights_options_from_pb(options)
        # Decoding happens as the adapter pulls tensors, so weights are applied while they stream; the lock is
        # held while bytes are written (into a parameter, where placed) and a tensor applied, not while the next
        # chunk is on its way.
        with self._lock:
            placer = self._adapter.weight_placer()
            tensors = codec.decode(self._unlocked_while_waiting(chunks), place=placer.place if placer else None)
            result = self._adapter.set_weights(tensors, strict=strict, placer=placer)
        return messages.set_weights_result_to_pb(result)

    @_rpc
    def PullWeights(self, request, context):
        plan = plan_of(request.mappings)
        with self._lock:  # released while each chunk is on its way, as for SetWeights
            placer = self._adapter.weight_placer(plan.unchanged().get)
            tensors = pulled(request.source, plan.pt_names, request.source_token, request.source_tls_ca,
                             request.source_tls_server_name, place=placer.place if placer else None,
                             waiting=self._unlocked_while_waiting)
            result = self._adapter.set_weights(plan.convert(tensors), strict=request.strict, placer=placer)
        return messages.set_weights_result_to_pb(result)

    @_streaming_rpc
    def Forward(self, request_iterator, context):
        options, chunks = messages.split_options(request_iterator, "Forward")
        inputs = list(codec.decode(chunks))
        with self._lock:
            result = self._adapter.forward(inputs, train_mode=messages.forward_options_from_pb(options))
        if result.skipped:
            context.set_trailing_metadata(messages.skipped_to_metadata(result.skipped))
        yield from codec.encode_frames(result.outputs)

    @_streaming_rpc
    def TrainStep(self, request_iterator, context):
        options, tensors = messages.options_and_tensors(request_iterator, "TrainStep")
        train_options = messages.train_options_from_pb(options)
        targets = [t for t in tensors if t.name == TARGET_NAME]
        if len(targets) != 1:
            raise errors.BadRequest(f"TrainStep: send exactly one tensor named {TARGET_NAME!r} besides the inputs")
        inputs = [t for t in tensors if t.name != TARGET_NAME]
        with self._lock:
            results = self._adapter.train_step(inputs, targets[0], train_options)
        # The step runs as the first result is pulled; each pull holds the lock, so no other call interleaves.
        yield from codec.encode_frames(self._locked(iter(results)))

    @_rpc
    def Record(self, request_iterator, context):
        options, inputs = messages.options_and_tensors(request_iterator, "Record")
        with self._lock:
            result = self._adapter.record(inputs, messages.record_options_from_pb(options))
        return messages.record_result_to_pb(result)

    @_streaming_rpc
    def GetActivations(self, request, context):
        with self._lock:
            tensors = self._adapter.get_activations(*messages.activations_request_from_pb(request))
        yield from codec.encode_frames(self._locked(iter(tensors)))

    @_streaming_rpc
    def RunModule(self, request_iterator, context):
        options, inputs = messages.options_and_tensors(request_iterator, "RunModule")
        path, call, float64, backward = messages.run_module_options_from_pb(options)
        with self._lock:
            outputs = self._adapter.run_module(path, call, float64, inputs, backward=backward)
        yield from codec.encode_frames(outputs)

    @_streaming_rpc
    def GetExampleInputs(self, request, context):
        with self._lock:
            tensors = self._adapter.get_example_inputs()
        yield from codec.encode_frames(self._locked(iter(tensors)))

    @_rpc
    def EndSession(self, request, context):
        if self._gate is not None:
            self._gate.end(dict(context.invocation_metadata() or ()).get(SESSION_KEY) or "")
        if self._model is None or not self._sessions.end(context.invocation_metadata()):
            return worker_pb2.EndSessionReply()
        with self._lock:
            return messages.end_session_to_pb(self._model.end_session())

    def _describe_without_model(self):
        framework = FRAMEWORK_OF_ROLE.get(self._name, self._name)
        return worker_pb2.DescribeReply(framework=framework, python_version=platform.python_version(),
                                        protocol_version=PROTOCOL_VERSION, hostname=socket.gethostname(),
                                        model_spec="", model_class="(no model: serves directories)")

    @_rpc
    def ListDir(self, request, context):
        return messages.dir_listing_to_pb(self._served.list_dir(request.path))

    @_streaming_rpc
    def GetTensors(self, request, context):
        yield from codec.encode_frames(self._served.get_tensors(request.path, list(request.names)))


def add_to_server(server: grpc.Server, adapter: ModelWorker | None, worker_name: str,
                  served: DirectoryServer | None = None) -> WorkerServicer:
    """Register a servicer for adapter (None: directories only) and the served directories on server."""
    servicer = WorkerServicer(adapter, worker_name, served)
    service.add_worker_service(servicer, server)
    return servicer
