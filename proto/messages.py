"""Protobuf messages <-> the worker interface's values, one pair of functions per message type.

The coordinator's client and the worker's servicer both convert here, so a field added to a
message is added in one place. Tensors themselves travel as chunk streams (proto/codec.py); the
streaming RPCs that take options send them first, then the tensors' chunks.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator

import numpy as np

from proto import codec, errors, worker_pb2
from proto.codec import NamedArray, TensorSpec
from proto.formats.npy_files import NpyEntry
from proto.tensor_pb2 import TensorSpec as TensorSpecPb
from proto.worker.interface import (
    DirListing,
    EndSessionResult,
    ModuleSpec,
    ParameterListing,
    ParameterSpec,
    RecordOptions,
    RecordResult,
    SetWeightsResult,
    TrainOptions,
    WorkerDescription,
)
from proto.worker.module_records import ModuleCall, TensorSummary

# -- streams: options first, then tensor chunks ----------------------------------------------------

def requests_with_options(request_type, options, tensors: Iterable[NamedArray]) -> Iterator:
    """The request stream of a streaming RPC: ``request_type(options=...)``, then one per chunk."""
    yield request_type(options=options)
    for chunk in codec.encode(tensors):
        yield request_type(chunk=chunk)


def split_options(requests: Iterator, kind: str):
    """(the options message or None when the stream starts with a chunk, an iterator of the chunks)."""
    first = next(requests, None)
    if first is not None and first.WhichOneof("item") == "options":
        options, pending = first.options, []
    else:
        options, pending = None, [first] if first is not None else []

    return options, (_chunk_of(item, kind) for item in itertools.chain(pending, requests))


def options_and_tensors(requests: Iterator, kind: str):
    """The required options message and every tensor of an (options, chunks...) stream, decoded."""
    options, chunks = split_options(requests, kind)
    if options is None:
        raise errors.BadRequest(f"{kind}: the first message must carry the options")
    return options, list(codec.decode(chunks))


def _chunk_of(item, kind: str):
    if item.WhichOneof("item") != "chunk":
        raise errors.BadRequest(f"{kind}: options may only come first in the stream")
    return item.chunk


# -- Describe --------------------------------------------------------------------------------------

_DESCRIPTION_FIELDS = ("framework", "framework_version", "python_version", "device", "protocol_version", "model_spec",
                       "model_class", "parameter_count", "parameter_elements", "hostname", "execution_mode",
                       "factory_loss", "factory_optimizer", "example_input_values", "weights_state", "rank",
                       "launcher", "pid")


def spec_to_pb(spec: TensorSpec) -> TensorSpecPb:
    return TensorSpecPb(name=spec.name, dtype=spec.dtype, shape=spec.shape)


def spec_from_pb(message: TensorSpecPb) -> TensorSpec:
    return TensorSpec(message.name, message.dtype, tuple(message.shape))


def description_to_pb(d: WorkerDescription) -> worker_pb2.DescribeReply:
    return worker_pb2.DescribeReply(**{k: getattr(d, k) for k in _DESCRIPTION_FIELDS},
                                    example_inputs=[spec_to_pb(s) for s in d.example_inputs],
                                    world_size=d.world_size, rank_addresses=list(d.rank_addresses),
                                    activation_paths=list(d.activation_paths))


def description_from_pb(reply: worker_pb2.DescribeReply) -> WorkerDescription:
    return WorkerDescription(**{k: getattr(reply, k) for k in _DESCRIPTION_FIELDS},
                             example_inputs=tuple(spec_from_pb(s) for s in reply.example_inputs),
                             world_size=reply.world_size or 1, rank_addresses=tuple(reply.rank_addresses),
                             activation_paths=tuple(reply.activation_paths))


# -- ListParameters --------------------------------------------------------------------------------

_PARAMETER_FIELDS = ("name", "dtype", "module_path", "module_type", "trainable", "is_buffer", "module_rule_type",
                     "placement", "shard_dim")


def listing_to_pb(listing: ParameterListing) -> worker_pb2.ListParametersReply:
    return worker_pb2.ListParametersReply(
        parameters=[worker_pb2.ParameterInfo(**{k: getattr(p, k) for k in _PARAMETER_FIELDS}, shape=p.shape)
                    for p in listing.parameters],
        modules=[worker_pb2.ModuleInfo(path=m.path, type=m.type, rule_type=m.rule_type) for m in listing.modules])


def listing_from_pb(reply: worker_pb2.ListParametersReply) -> ParameterListing:
    return ParameterListing(
        parameters=tuple(ParameterSpec(**{k: getattr(p, k) for k in _PARAMETER_FIELDS}, shape=tuple(p.shape))
                         for p in reply.parameters),
        modules=tuple(ModuleSpec(m.path, m.type, m.rule_type) for m in reply.modules))


# -- SetWeights ------------------------------------------------------------------------------------

def set_weights_options_to_pb(strict: bool) -> worker_pb2.SetWeightsOptions:
    return worker_pb2.SetWeightsOptions(strict=strict)


def set_weights_options_from_pb(options) -> bool:
    """strict, from the optional options message (None: not strict)."""
    return bool(options and options.strict)


def set_weights_result_to_pb(result: SetWeightsResult) -> worker_pb2.SetWeightsReply:
    return worker_pb2.SetWeightsReply(loaded=result.loaded, missing=list(result.missing))


def set_weights_result_from_pb(reply: worker_pb2.SetWeightsReply) -> SetWeightsResult:
    return SetWeightsResult(loaded=reply.loaded, missing=tuple(reply.missing))


# -- Forward ---------------------------------------------------------------------------------------

def forward_options_to_pb(train_mode: bool) -> worker_pb2.ForwardOptions:
    return worker_pb2.ForwardOptions(train_mode=train_mode)


def forward_options_from_pb(options) -> bool:
    """train_mode, from the optional options message (None: eval mode)."""
    return bool(options and options.train_mode)


SKIPPED_METADATA_KEY = "x-msparity-skipped-outputs"  # Forward's trailing metadata: JSON list of "NAME (TYPE)"


def skipped_to_metadata(skipped) -> tuple[tuple[str, str], ...]:
    """Forward's trailing metadata naming the non-tensor outputs left out (none when nothing was)."""
    return ((SKIPPED_METADATA_KEY, json.dumps(list(skipped))),) if skipped else ()


def skipped_from_metadata(metadata) -> tuple[str, ...]:
    """The non-tensor outputs a worker left out, from Forward's trailing metadata (older workers send none)."""
    for key, value in metadata or ():
        if key == SKIPPED_METADATA_KEY:
            return tuple(str(name) for name in json.loads(value))
    return ()


# -- TrainStep -------------------------------------------------------------------------------------

_TRAIN_FIELDS = ("loss", "optimizer", "lr", "reset", "return_state", "return_moments", "float64_reference")


def train_options_to_pb(options: TrainOptions) -> worker_pb2.TrainOptions:
    return worker_pb2.TrainOptions(**{k: getattr(options, k) for k in _TRAIN_FIELDS})


def train_options_from_pb(options: worker_pb2.TrainOptions) -> TrainOptions:
    """A TrainOptions message as the interface's dataclass, checked (TrainOptions.check)."""
    result = TrainOptions(**{k: getattr(options, k) for k in _TRAIN_FIELDS})
    result.check()
    return result


# -- Record ----------------------------------------------------------------------------------------

def record_options_to_pb(options: RecordOptions) -> worker_pb2.RecordOptions:
    return worker_pb2.RecordOptions(sketch_size=options.sketch_size, sketch_seed=options.sketch_seed,
                                    float64_reference=options.float64_reference, backward_loss=options.backward_loss)


def record_options_from_pb(options: worker_pb2.RecordOptions) -> RecordOptions:
    return RecordOptions(options.sketch_size, options.sketch_seed, options.float64_reference, options.backward_loss)


def summary_to_pb(s: TensorSummary) -> worker_pb2.TensorSummary:
    return worker_pb2.TensorSummary(name=s.name, dtype=s.dtype, shape=s.shape, min=s.min, max=s.max, mean=s.mean,
                                    norm=s.norm, finite=s.finite, sketch=s.sketch.tolist(), sketch_seed=s.sketch_seed)


def summary_from_pb(s: worker_pb2.TensorSummary) -> TensorSummary:
    sketch = np.asarray(s.sketch, dtype=np.float64)
    sketch.setflags(write=False)
    return TensorSummary(name=s.name, dtype=s.dtype, shape=tuple(s.shape), min=s.min, max=s.max, mean=s.mean,
                         norm=s.norm, finite=s.finite, sketch=sketch, sketch_seed=s.sketch_seed)


def call_to_pb(c: ModuleCall) -> worker_pb2.ModuleCall:
    return worker_pb2.ModuleCall(path=c.path, type=c.type, rule_type=c.rule_type, call=c.call, start=c.start,
                                 end=c.end, inputs=[summary_to_pb(s) for s in c.inputs],
                                 outputs=[summary_to_pb(s) for s in c.outputs], param_names=list(c.param_names),
                                 attributes=dict(c.attributes))


def call_from_pb(c: worker_pb2.ModuleCall) -> ModuleCall:
    return ModuleCall(path=c.path, type=c.type, rule_type=c.rule_type, call=c.call, start=c.start, end=c.end,
                      inputs=tuple(summary_from_pb(s) for s in c.inputs),
                      outputs=tuple(summary_from_pb(s) for s in c.outputs), param_names=tuple(c.param_names),
                      attributes=tuple(sorted(c.attributes.items())))


def record_result_to_pb(result: RecordResult) -> worker_pb2.RecordReply:
    return worker_pb2.RecordReply(calls=[call_to_pb(c) for c in result.calls],
                                  reference_calls=[call_to_pb(c) for c in result.reference_calls],
                                  reference_note=result.reference_note)


def record_result_from_pb(reply: worker_pb2.RecordReply) -> RecordResult:
    return RecordResult(tuple(call_from_pb(c) for c in reply.calls),
                        tuple(call_from_pb(c) for c in reply.reference_calls), reply.reference_note)


# -- GetActivations / RunModule --------------------------------------------------------------------

def activations_request_to_pb(run: str, keys, inputs: bool, outputs: bool) -> worker_pb2.GetActivationsRequest:
    return worker_pb2.GetActivationsRequest(run=run, keys=list(keys), inputs=inputs, outputs=outputs)


def activations_request_from_pb(request: worker_pb2.GetActivationsRequest) -> tuple[str, list[str], bool, bool]:
    """(run, keys, inputs, outputs) of a GetActivations request."""
    return request.run, list(request.keys), request.inputs, request.outputs


def run_module_options_to_pb(path: str, call: int, float64: bool, backward: bool = False) -> worker_pb2.RunModuleOptions:
    return worker_pb2.RunModuleOptions(path=path, call=call, float64=float64, backward=backward)


def run_module_options_from_pb(options: worker_pb2.RunModuleOptions) -> tuple[str, int, bool, bool]:
    """(path, call, float64, backward) of a RunModule stream's options."""
    return options.path, options.call, options.float64, options.backward


# -- ListDir ---------------------------------------------------------------------------------------

def dir_listing_to_pb(listing: DirListing) -> worker_pb2.ListDirReply:
    return worker_pb2.ListDirReply(path=listing.path, entries=[
        worker_pb2.DirEntry(name=e.name, dtype=e.dtype, shape=e.shape, nbytes=e.nbytes, ctime=e.ctime)
        for e in listing.entries])


def dir_listing_from_pb(reply: worker_pb2.ListDirReply) -> DirListing:
    return DirListing(reply.path, tuple(NpyEntry(e.name, e.dtype, tuple(e.shape), e.nbytes, e.ctime)
                                        for e in reply.entries))


# -- EndSession ------------------------------------------------------------------------------------

def end_session_to_pb(result: EndSessionResult) -> worker_pb2.EndSessionReply:
    return worker_pb2.EndSessionReply(restored=result.restored, note=result.note)


def end_session_from_pb(reply: worker_pb2.EndSessionReply) -> EndSessionResult:
    return EndSessionResult(reply.restored, reply.note)
