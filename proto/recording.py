"""Recording one forward on a worker: every module / cell call's tensors, kept here, summarised for the wire.

Both workers' hooks feed a CallRecorder (framework-free bookkeeping): a counter gives each call its
start (pre-hook) and end (post-hook), so children nest inside parents; a per-path count gives the
call index of a module used twice. Tensors are copied into numpy on the worker (activations never
leave it unless the coordinator asks for a call's tensors), and each is summarised (statistics and a
count sketch, proto/module_records.py) for the reply. Only positional tensor arguments are recorded;
the non-tensor ones are kept as a template so a call can be replayed with other tensors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from proto.adapter import flatten_outputs
from proto.codec import NamedArray
from proto.errors import BadRequest, NotFound
from proto.module_records import ModuleCall, summarize

RUNS = ("f32", "f64")
_TENSOR = object()  # marks a tensor argument's place in a replay template


@dataclass
class RecordedRun:
    """One recorded forward: its calls in completion order, their tensors, and replay templates."""

    calls: list[ModuleCall] = field(default_factory=list)
    tensors: dict[str, tuple[list[NamedArray], list[NamedArray]]] = field(default_factory=dict)
    templates: dict[str, list] = field(default_factory=dict)  # key -> positional args, tensors marked


class CallRecorder:
    """Turns pre/post hook events into ModuleCalls with summaries, keeping the tensors."""

    def __init__(self, to_named: Callable[[str, object], NamedArray], is_tensor: Callable[[object], bool],
                 sketch_size: int, sketch_seed: int):
        self.to_named = to_named
        self.is_tensor = is_tensor
        self.sketch_size = sketch_size
        self.sketch_seed = sketch_seed
        self.run = RecordedRun()
        self._counter = 0
        self._calls_per_path: Counter = Counter()
        self._open: dict[str, list[tuple[int, int]]] = {}

    def pre(self, path: str, args) -> None:
        """A call of the module at path begins."""
        call = self._calls_per_path[path]
        self._calls_per_path[path] += 1
        self._open.setdefault(path, []).append((self._counter, call))
        self._counter += 1

    def post(self, path: str, type_name: str, rule_type: str, param_names: Sequence[str], args, output) -> None:
        """The call of the module at path returned output."""
        start, call = self._open[path].pop()
        end = self._counter
        self._counter += 1
        key = f"{path}#{call}"
        args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
        inputs = self.arrays(key, "in", args)
        outputs = self.arrays(key, "out", output)
        self.run.tensors[key] = (inputs, outputs)
        self.run.templates[key] = [_TENSOR if self.is_tensor(a) else a for a in args]
        self.run.calls.append(ModuleCall(
            path=path, type=type_name, rule_type=rule_type, call=call, start=start, end=end,
            inputs=tuple(self._summary(t) for t in inputs), outputs=tuple(self._summary(t) for t in outputs),
            param_names=tuple(param_names)))

    def arrays(self, key: str, side: str, value) -> list[NamedArray]:
        """The tensor leaves of value as NamedArrays named KEY|SIDE|I."""
        leaves = [leaf for _, leaf in flatten_outputs(value, self.is_tensor, side) if self.is_tensor(leaf)]
        return [self.to_named(f"{key}|{side}|{i}", leaf) for i, leaf in enumerate(leaves)]

    def _summary(self, tensor: NamedArray):
        return summarize(tensor.name, tensor.array, self.sketch_size, self.sketch_seed, tensor.dtype)


def recorded_tensors(runs: dict[str, RecordedRun], run: str, keys: Sequence[str], inputs: bool,
                     outputs: bool) -> Iterator[NamedArray]:
    """The kept tensors of the calls asked for (inputs, then outputs, of each key in order)."""
    if run not in runs:
        raise NotFound(f"no recorded {run!r} forward on this worker; run locate (Record) first")
    recorded = runs[run]
    unknown = [k for k in keys if k not in recorded.tensors]
    if unknown:
        raise NotFound(f"{len(unknown)} call(s) not recorded in the {run!r} forward: {', '.join(unknown[:5])}")
    for key in keys:
        ins, outs = recorded.tensors[key]
        if inputs:
            yield from ins
        if outputs:
            yield from outs


def replay_args(runs: dict[str, RecordedRun], run: str, key: str, tensors: list) -> list:
    """The recorded positional arguments of call key, its tensors replaced by ``tensors`` in order."""
    recorded = runs.get(run)
    if recorded is None or key not in recorded.templates:
        raise NotFound(f"call {key!r} was not recorded in the {run!r} forward; run locate (Record) first")
    template = recorded.templates[key]
    slots = sum(1 for a in template if a is _TENSOR)
    if slots != len(tensors):
        raise BadRequest(f"call {key!r} takes {slots} tensor argument(s), {len(tensors)} were sent")
    supplied = iter(tensors)
    return [next(supplied) if a is _TENSOR else a for a in template]
