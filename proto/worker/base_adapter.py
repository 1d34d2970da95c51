"""What both framework adapters share: the interface's methods over a few framework hooks.

A framework adapter (pt_worker.adapter, ms_worker.adapter) subclasses BaseAdapter, gives its
tensor boundary (a module, or any object, with the same verbs on both sides: ``numpy_from_native``, ``native_from_numpy``,
``is_native_tensor``), and fills in the hooks: the net's state, how one tensor is written into
it, how the net is called, its parameter listing and a few describe facts. Weight checks, the
forward's error message, describe, and the delegation of training and recording live here once.
"""

from __future__ import annotations

import dataclasses
import platform
import socket
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from proto.codec import NamedArray, TensorSpec, digest_of, spec_of
from proto.errors import BadRequest, FailedPrecondition, NotFound
from proto.weights.shards import parse_placements
from proto.worker.activation_layout import (
    Layout,
    gather_arrays,
    local_inputs,
    parse_activations,
    whole_outputs,
    whole_run,
)
from proto.worker.interface import (
    PROTOCOL_VERSION,
    TARGET_NAME,
    WEIGHTS_AS_BUILT,
    WEIGHTS_PARTIAL,
    WEIGHTS_SET,
    WEIGHTS_TRAINED,
    EndSessionResult,
    ForwardResult,
    ParameterListing,
    ParameterSpec,
    RecordOptions,
    RecordResult,
    SetWeightsResult,
    TrainOptions,
    WorkerDescription,
)
from proto.worker.net_io import NET_ERRORS, as_input_list, flatten_outputs, input_name
from proto.worker.weight_placing import WeightPlacer


def apply_weights(
    tensors: Iterable[NamedArray],
    targets: dict[str, ParameterSpec],
    assign,
    strict: bool,
    framework: str,
) -> SetWeightsResult:
    """Check each incoming tensor against the net's parameter specs and assign it.

    ``assign(tensor)`` writes one checked tensor into the net. Unknown names, shape and dtype
    mismatches are collected and raised together at the end (one error listing them all); with
    ``strict`` a parameter the stream did not set is an error too.
    """
    problems: list[str] = []
    loaded: set[str] = set()
    for tensor in tensors:
        target = targets.get(tensor.name)
        if target is None:
            problems.append(f"{tensor.name!r} is not a parameter of the {framework} net")
        elif tuple(target.shape) != tensor.shape:
            problems.append(f"{tensor.name!r} has shape {list(tensor.shape)}, the net's is {list(target.shape)}")
        elif target.dtype != tensor.dtype:
            problems.append(f"{tensor.name!r} is {tensor.dtype}, the net's is {target.dtype}")
        else:
            assign(tensor)
            loaded.add(tensor.name)
    missing = tuple(name for name in targets if name not in loaded)
    if strict and missing:
        problems.append(f"not set: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} ({len(missing)})")
    if problems:
        shown = "; ".join(problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise BadRequest(f"{len(problems)} weight problem(s): {shown}{more}")
    return SetWeightsResult(loaded=len(loaded), missing=missing)


def select_weights(names: Sequence[str], available: dict[str, object], framework: str) -> list[str]:
    """The names to stream for a GetWeights request (all when empty); unknown names raise NotFound."""
    if not names:
        return list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise NotFound(f"{len(unknown)} unknown {framework} parameter(s): {', '.join(unknown[:10])}")
    return list(names)


def inputs_text(inputs: Sequence[NamedArray]) -> str:
    """The inputs' names, shapes and dtypes, for an error message."""
    return ", ".join(f"{x.name} {list(x.shape)} {x.dtype}" for x in inputs)


GRAD_INPUT_PREFIX = "grad"  # a backward RunModule's gradients wrt the call's outputs: grad0, grad1, ...


class BaseAdapter:
    """One net behind the worker interface; subclasses supply the framework hooks below."""

    framework = ""  # "pytorch" / "mindspore", as Describe reports it
    framework_version = ""

    def __init__(self, net, tensors, example_inputs=None, model_spec: str = "", trainer=None,
                 recorder=None, use_input_values: bool = False):
        self.net = net
        self.use_input_values = use_input_values
        self.tensors = tensors
        self.model_spec = model_spec
        self.trainer = trainer
        self.recorder = recorder
        self.example_inputs = [self._to_numpy(input_name(i), x) for i, x in enumerate(as_input_list(example_inputs))]
        self.weights_state = WEIGHTS_AS_BUILT
        self.placements: dict[str, tuple[str, int]] = {}  # set_placements: how each tensor lies over the ranks
        self.activations: Layout = {}  # set_activations: how declared modules' tensors lie over the ranks
        self._rank_gather = None  # join_ranks: (the job's int32 all-gather, world size, this rank)
        self._before_training: tuple[str, list[NamedArray]] | None = None  # (state, values) before a session trained

    # -- hooks -------------------------------------------------------------------------------------

    def _state(self) -> dict[str, object]:
        """Every named tensor of the net's state (parameters and buffers), in registration order."""
        raise NotImplementedError

    def list_parameters(self) -> ParameterListing:
        """Every state entry with its owning module, and every module (the framework walks its net)."""
        raise NotImplementedError

    def set_placements(self, declared) -> None:
        """The factory's "placements" (proto/worker/rank_job.py): which tensors are this rank's slice of a whole."""
        self.placements = parse_placements(declared, self._state())

    def set_activations(self, declared) -> None:
        """The factory's "activations" (proto/worker/activation_layout.py): modules whose tensors are slices or
        partial sums on each rank, made whole after a recorded forward."""
        self.activations = parse_activations(declared, [m.path for m in self.list_parameters().modules])

    def join_ranks(self, join) -> None:
        """This process serves one rank of a job (a proto.worker.rank_job.RankJoin): recordings gather over it."""
        if join.all_gather_int32 is not None and join.world_size > 1:
            self._rank_gather = (join.all_gather_int32, join.world_size, join.rank)

    def _gathered(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's array of the same place, by rank (a collective over the job)."""
        all_gather, world, _ = self._rank_gather
        return gather_arrays(all_gather, array, world)

    def _placed(self, listing: ParameterListing) -> ParameterListing:
        """The listing with each tensor's placement (shard: the shape is this rank's slice)."""
        if not self.placements:
            return listing
        return dataclasses.replace(listing, parameters=tuple(
            dataclasses.replace(p, placement=self.placements[p.name][0], shard_dim=self.placements[p.name][1])
            if p.name in self.placements else p for p in listing.parameters))

    def _assign(self, target, tensor: NamedArray) -> None:
        """Write one checked tensor into the state entry target, in place."""
        raise NotImplementedError

    def _writable_view(self, target) -> np.ndarray | None:
        """A numpy array that is the state entry target's own memory, with the framework's queued work on it
        finished, or None (the default: never)."""
        return None

    def _call_net(self, inputs: Sequence[NamedArray], train_mode: bool):
        """Run the net on inputs in the mode asked for; return what it returned."""
        raise NotImplementedError

    def _fix_random(self, seed: int) -> None:
        """Seed Python, numpy and the framework (the worker package's fix_random)."""
        raise NotImplementedError

    def _as_native(self, value):
        """A value that is not a framework tensor (a numpy example input, a Python number output) as one."""
        raise NotImplementedError

    def _numel(self, value) -> int:
        """Elements of one state tensor."""
        raise NotImplementedError

    def _device(self) -> str:
        """Where the net runs, as Describe reports it ("cpu", "cuda:0", "Ascend:0")."""
        raise NotImplementedError

    def _execution_mode(self) -> str:
        """Describe's execution mode: "eager" (torch), "pynative" or "graph" (mindspore)."""
        raise NotImplementedError

    # -- the interface -----------------------------------------------------------------------------

    def _to_numpy(self, name: str, value) -> NamedArray:
        native = value if self.tensors.is_native_tensor(value) else self._as_native(value)
        return self.tensors.numpy_from_native(name, native)

    def describe(self) -> WorkerDescription:
        state = self._state()
        return WorkerDescription(
            framework=self.framework,
            framework_version=self.framework_version,
            python_version=platform.python_version(),
            device=self._device(),
            protocol_version=PROTOCOL_VERSION,
            model_spec=self.model_spec,
            model_class=type(self.net).__name__,
            parameter_count=len(state),
            parameter_elements=sum(self._numel(t) for t in state.values()),
            example_inputs=tuple(spec_of(x) for x in self.example_inputs),
            hostname=socket.gethostname(),
            execution_mode=self._execution_mode(),
            factory_loss=_class_name(self.trainer.factory_loss),
            factory_optimizer=_class_name(self.trainer.factory_optimizer),
            example_input_values=self.use_input_values and bool(self.example_inputs),
            weights_state=self.weights_state,
            activation_paths=tuple(self.activations),
        )

    def seed(self, seed: int) -> None:
        self._fix_random(seed)

    def get_weights(self, names: Sequence[str] = ()) -> Iterator[NamedArray]:
        state = self._state()
        for name in select_weights(names, state, self.framework):
            yield self.tensors.numpy_from_native(name, state[name])

    def weight_digests(self, names: Sequence[str] = ()) -> list[tuple[TensorSpec, bytes]]:
        """Each named weight's spec and the digest of its bytes (proto.codec.digest_of) as the wire carries them."""
        return [(spec_of(tensor), digest_of(tensor)) for tensor in self.get_weights(names)]

    def weight_placer(self, target_of=lambda name: name) -> WeightPlacer | None:
        """A placer writing streamed tensors straight into the parameters they set unchanged (target_of: the
        parameter a streamed name sets, None for none), where this worker can write into them; else None."""
        if type(self)._writable_view is BaseAdapter._writable_view:
            return None
        state = self._state()
        specs = {p.name: p for p in self.list_parameters().parameters}
        return WeightPlacer(specs, lambda name: self._writable_view(state[name]), target_of)

    def set_weights(self, tensors: Iterable[NamedArray], strict: bool = False,
                    placer: WeightPlacer | None = None) -> SetWeightsResult:
        """Assign streamed tensors (those the placer already wrote into their parameters are left as they are).
        A stream that fails after assigning some leaves the net refusing to compute (WEIGHTS_PARTIAL) until its
        weights are set again: a mix of two models must never be compared."""
        state = self._state()
        specs = placer.specs if placer is not None else {p.name: p for p in self.list_parameters().parameters}
        assigned = 0

        def assign(tensor: NamedArray) -> None:
            nonlocal assigned
            if placer is None or not placer.holds(tensor.name, tensor.array):
                self._assign(state[tensor.name], tensor)
            assigned += 1

        try:
            result = apply_weights(tensors, specs, assign, strict, self.framework)
        except BaseException:
            if assigned or (placer is not None and placer.touched):
                self.weights_state = f"{WEIGHTS_PARTIAL} ({assigned} of {len(specs)} tensors)"
            raise
        if result.loaded:
            self.weights_state = WEIGHTS_SET
        return result

    def _check_weights(self) -> None:
        if self.weights_state.startswith(WEIGHTS_PARTIAL):
            raise FailedPrecondition(f"the {self.framework} net's weights were {self.weights_state}: set them again "
                                     "(compare, locate and train-step do, unless --no-sync-weights)")

    def end_session(self) -> EndSessionResult:
        """Put back the values a session's training steps changed (taken before its first step)."""
        if self._before_training is None:
            return EndSessionResult()
        state, values = self._before_training
        self._before_training = None
        result = self.set_weights(iter(values))
        self.weights_state = state
        self.trainer.forget()
        return EndSessionResult(result.loaded, f"{result.loaded} tensors put back as they were before training")

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> ForwardResult:
        self._check_weights()
        skipped: list[str] = []
        try:
            result = self._call_net(inputs, train_mode)
            # converted inside the try: MindSpore's PyNative runs asynchronously, a kernel error surfaces here
            outputs = tuple(self._to_numpy(name, value)
                            for name, value in flatten_outputs(result, self.tensors.is_native_tensor, skipped=skipped))
        except NET_ERRORS as exc:
            raise BadRequest(f"forward failed on inputs ({inputs_text(inputs)}): {type(exc).__name__}: {exc}") from exc
        return ForwardResult(outputs, tuple(skipped))

    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions) -> Iterator[NamedArray]:
        """One training step (see the framework's training module); yields loss, grads, state and moments lazily.

        The first step of a session keeps a copy of the state, put back when the session ends (end_session)."""
        self._check_weights()
        if self._before_training is None:
            copies = [NamedArray(t.name, np.array(t.array, copy=True), t.dtype) for t in self.get_weights()]
            self._before_training = (self.weights_state, copies)
        self.weights_state = WEIGHTS_TRAINED
        return self.trainer.step(inputs, target, options)

    def record(self, inputs: Sequence[NamedArray], options: RecordOptions) -> RecordResult:
        """One forward with every module / cell hooked (see the framework's recording module); with
        ``options.backward_loss``, one forward and backward of that loss against the input named "target",
        the hooks recording the gradients each module receives and passes on."""
        self._check_weights()
        if not options.backward_loss:
            return self._whole(self.recorder.record(inputs, options), options)
        targets = [x for x in inputs if x.name == TARGET_NAME]
        if len(targets) != 1:
            raise BadRequest(f"a backward Record needs exactly one tensor named {TARGET_NAME!r} besides the inputs")
        loss_fn = self.trainer.loss_fn(options.backward_loss)
        return self._whole(self.recorder.record_backward(
            [x for x in inputs if x.name != TARGET_NAME],
            lambda outputs: self.trainer.loss_of(options.backward_loss, loss_fn, outputs, targets[0]), options), options)

    def _whole(self, result: RecordResult, options: RecordOptions) -> RecordResult:
        """On one rank of a job, the recording with the declared activations made whole (every rank does this)."""
        if not self.activations or self._rank_gather is None:
            return result
        runs = self.recorder.runs
        for run in ("f32", "f64"):
            if run in runs:
                whole_run(runs[run], self.activations, self._gathered, bool(options.backward_loss),
                          options.sketch_size, options.sketch_seed)
        return dataclasses.replace(result, calls=tuple(runs["f32"].calls),
                                   reference_calls=tuple(runs["f64"].calls) if result.reference_calls else ())

    def get_activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool) -> Iterator[NamedArray]:
        return self.recorder.activations(run, keys, inputs, outputs)

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray],
                   backward: bool = False) -> list[NamedArray]:
        """Replay one recorded call on the tensors given; ``backward``: its backward, on its forward inputs and
        the gradients named "grad0", ... wrt its outputs, returning the gradients wrt its inputs."""
        if not backward:
            if not self.activations or self._rank_gather is None:
                return self.recorder.run_module(path, call, float64, inputs)
            # one rank of a job: every rank replays on the same whole inputs, each on its part, made whole after
            run = self.recorder.runs.get("f64" if float64 else "f32")
            mine = local_inputs(run, f"{path}#{call}", self.activations, path, self._rank_gather[2], inputs)
            return whole_outputs(self.recorder.run_module(path, call, float64, mine), self.activations, path,
                                 self._gathered)
        grads = [x for x in inputs if x.name.startswith(GRAD_INPUT_PREFIX)]
        forward = [x for x in inputs if not x.name.startswith(GRAD_INPUT_PREFIX)]
        return self.recorder.run_module_backward(path, call, float64, forward, grads)

    def get_example_inputs(self) -> Iterator[NamedArray]:
        """The factory's example inputs with their values, as numpy (none when the factory gave none)."""
        return iter(self.example_inputs)


def _class_name(value) -> str:
    return type(value).__name__ if value is not None else ""
