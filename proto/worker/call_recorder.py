"""Recording one forward on a worker: every module / cell call's tensors, kept here, summarised for the wire.

Both workers' hooks feed a CallRecorder (framework-free bookkeeping): a counter gives each call its
start (pre-hook) and end (post-hook), so children nest inside parents; a per-path count gives the
call index of a module used twice. Tensors are copied into numpy on the worker (activations never
leave it unless the coordinator asks for a call's tensors), and each is summarised (statistics and a
count sketch, proto/worker/module_records.py) for the reply.

Inputs are copied when the call begins (pre-hook), so an in-place op inside the module (torch's
``ReLU(inplace=True)``, ``out += identity``) cannot rewrite what it was given. Positional and keyword
arguments are both recorded, nested in tuples, lists and dicts: the tensor leaves, positional first
and then keyword arguments in call order, are the call's inputs; everything else is kept as a
template, so a call can be replayed with other tensors in the same places.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from proto.codec import NamedArray
from proto.errors import BadRequest, NotFound
from proto.worker.module_records import ModuleCall, TensorSummary, summarize
from proto.worker.net_io import flatten_outputs

RUNS = ("f32", "f64")
_TENSOR = object()  # marks a tensor argument's place in a replay template


@dataclass
class RecordedRun:
    """One recorded forward: its calls in completion order, their tensors, and replay templates."""

    calls: list[ModuleCall] = field(default_factory=list)
    tensors: dict[str, tuple[list[NamedArray], list[NamedArray]]] = field(default_factory=dict)
    templates: dict[str, tuple[list, dict]] = field(default_factory=dict)  # key -> (args, kwargs), tensors marked
    forward: RecordedRun | None = None  # a backward run's forward (its calls' inputs, for a backward replay)
    rank_shapes: dict[str, dict[str, list]] = field(default_factory=dict)  # key -> side -> each tensor's shapes by
    # rank, for the calls whose declared slices were made whole (proto/worker/activation_layout.py), else None


class CallRecorder:
    """Turns pre/post hook events into ModuleCalls with summaries, keeping the tensors."""

    def __init__(self, to_named: Callable[[str, object], NamedArray], is_tensor: Callable[[object], bool],
                 sketch_size: int, sketch_seed: int, identity: Callable[[object], Hashable] | None = None):
        """``identity(tensor)``, when given, is a token equal for the same tensor with the same contents
        (torch: the object and its in-place version counter); a tensor seen again (a parent's input is
        its first child's) then shares the copy and summary already made."""
        self.to_named = to_named
        self.is_tensor = is_tensor
        self.sketch_size = sketch_size
        self.sketch_seed = sketch_seed
        self.identity = identity
        self._copies: dict[Hashable, NamedArray] = {}
        self._summaries: dict[int, TensorSummary] = {}  # id(copy's array) -> its summary; copies live in run
        self.run = RecordedRun()
        self._counter = 0
        self._calls_per_path: Counter = Counter()
        self._open: dict[str, list[tuple[int, int, list[NamedArray], tuple]]] = {}  # start, call, inputs, template

    def pre(self, path: str, args, kwargs=None) -> None:
        """A call of the module at path begins: its tensor arguments are copied now."""
        call = self._calls_per_path[path]
        self._calls_per_path[path] += 1
        key = f"{path}#{call}"
        args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
        kwargs = dict(kwargs or {})
        inputs = self.arrays(key, "in", (args, kwargs))
        template = (_template(list(args), self.is_tensor), _template(kwargs, self.is_tensor))
        self._open.setdefault(path, []).append((self._counter, call, inputs, template))
        self._counter += 1

    def post(self, path: str, type_name: str, rule_type: str, param_names: Sequence[str], output,
             attributes: tuple[tuple[str, str], ...] = ()) -> None:
        """The call of the module at path returned output."""
        start, call, inputs, template = self._open[path].pop()
        end = self._counter
        self._counter += 1
        key = f"{path}#{call}"
        outputs = self.arrays(key, "out", output)
        self.run.tensors[key] = (inputs, outputs)
        self.run.templates[key] = template
        self.run.calls.append(ModuleCall(
            path=path, type=type_name, rule_type=rule_type, call=call, start=start, end=end,
            inputs=tuple(self._summary(t) for t in inputs), outputs=tuple(self._summary(t) for t in outputs),
            param_names=tuple(param_names), attributes=attributes))

    def arrays(self, key: str, side: str, value) -> list[NamedArray]:
        """The tensor leaves of value as NamedArrays named KEY|SIDE|I."""
        leaves = [leaf for _, leaf in flatten_outputs(value, self.is_tensor, side) if self.is_tensor(leaf)]
        return [self._named(f"{key}|{side}|{i}", leaf) for i, leaf in enumerate(leaves)]

    def _named(self, name: str, leaf) -> NamedArray:
        token = self.identity(leaf) if self.identity else None
        seen = self._copies.get(token) if token is not None else None
        if seen is not None:
            return NamedArray(name, seen.array, seen.dtype)
        named = self.to_named(name, leaf)
        if token is not None:
            self._copies[token] = named
        return named

    def _summary(self, tensor: NamedArray) -> TensorSummary:
        seen = self._summaries.get(id(tensor.array))
        if seen is not None:
            return replace(seen, name=tensor.name)
        summary = summarize(tensor.name, tensor.array, self.sketch_size, self.sketch_seed, tensor.dtype)
        self._summaries[id(tensor.array)] = summary
        return summary


# Settings of a module / cell the hints compare across the two sides (both frameworks' spellings).
ATTRIBUTE_NAMES = ("eps", "epsilon", "variance_epsilon", "momentum", "approximate", "padding", "pad_mode", "stride",
                   "kernel_size", "dilation", "ceil_mode", "negative_slope", "alpha", "p", "keep_prob", "dim", "axis",
                   "scale", "scaling")  # an attention's score scale: timm/mindcv ``scale``, HuggingFace ``scaling``


def module_attributes(module) -> tuple[tuple[str, str], ...]:
    """The module's settings among ATTRIBUTE_NAMES that hold plain values (numbers, strings, tuples), as text.

    A MindSpore cell runs its primitives (``LayerNorm.layer_norm``): their attributes are what really runs,
    so they win over the cell's own (a port that swaps the primitive leaves the cell's ``epsilon`` stale).
    """
    found = {}
    for name in ATTRIBUTE_NAMES:
        try:
            value = _scalar(getattr(module, name, None))
        except (TypeError, ValueError, RuntimeError):  # a property that cannot answer outside a forward
            continue
        if _plain(value):
            found[name] = repr(value)
    for value in list(getattr(module, "__dict__", {}).values()):
        attrs = getattr(value, "attrs", None) if not isinstance(value, (dict, list, tuple)) else None
        if isinstance(attrs, dict):
            found.update({name: repr(attrs[name]) for name in ATTRIBUTE_NAMES if name in found and _plain(attrs.get(name))})
    return tuple(found.items())


def _scalar(value):
    """A 0-d tensor or array (mindcv keeps its attention scale as ``Tensor(head_dim ** -0.5)``) as its number."""
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return value.item()
    return value


def _plain(value) -> bool:
    return isinstance(value, (bool, int, float, str)) or (
        isinstance(value, tuple) and all(isinstance(v, (bool, int, float)) for v in value))


class BaseRecorder:
    """What both frameworks' recorders share: the recorded forwards of one net, and their tensors on request."""

    def __init__(self, net, rule_type: Callable[[object], str]):
        self.net = net
        self.rule_type = rule_type
        self.runs: dict[str, RecordedRun] = {}

    def activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool) -> Iterator[NamedArray]:
        """The kept tensors of the calls asked for (inputs, then outputs, of each key in order)."""
        return recorded_tensors(self.runs, run, keys, inputs, outputs)


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


def _rebuild(value, items: list):
    """A sequence of value's kind holding items (namedtuples by field, unknown kinds as tuples)."""
    if hasattr(value, "_fields"):
        return type(value)(*items)
    try:
        return type(value)(items)
    except TypeError:
        return tuple(items)


def _template(value, is_tensor):
    """value with every tensor leaf replaced by a marker (same walk as flatten_outputs: dicts, sequences)."""
    if is_tensor(value):
        return _TENSOR
    if isinstance(value, dict):
        return {k: _template(v, is_tensor) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return _rebuild(value, [_template(v, is_tensor) for v in value])
    return value


def _count(template) -> int:
    if template is _TENSOR:
        return 1
    if isinstance(template, dict):
        return sum(_count(v) for v in template.values())
    if isinstance(template, (tuple, list)):
        return sum(_count(v) for v in template)
    return 0


def _fill(template, supplied: Iterator):
    if template is _TENSOR:
        return next(supplied)
    if isinstance(template, dict):
        return {k: _fill(v, supplied) for k, v in template.items()}
    if isinstance(template, (tuple, list)):
        return _rebuild(template, [_fill(v, supplied) for v in template])
    return template


def replay_args(runs: dict[str, RecordedRun], run: str, key: str, tensors: list) -> tuple[list, dict]:
    """The recorded (args, kwargs) of call key, its tensors replaced by ``tensors`` in recording order."""
    recorded = runs.get(run)
    if recorded is None or key not in recorded.templates:
        raise NotFound(f"call {key!r} was not recorded in the {run!r} forward; run locate (Record) first")
    args, kwargs = recorded.templates[key]
    slots = _count(args) + _count(kwargs)
    if slots != len(tensors):
        raise BadRequest(f"call {key!r} takes {slots} tensor argument(s), {len(tensors)} were sent")
    supplied = iter(tensors)
    return _fill(args, supplied), _fill(kwargs, supplied)


def backward_run(grads: dict, order: list, recorder: CallRecorder) -> RecordedRun:
    """ModuleCalls of a recorded backward (both workers catch gradients per call: ``grads[key]`` holds the call's
    path, type, rule type, parameter names, attributes, and its "out" / "in" gradients by index; ``order`` the
    (key, side) events as they came): a call starts when the gradient wrt its outputs arrives and ends when
    the one wrt its inputs does (a call that passes none back ends right after it starts)."""
    position = {event: i for i, event in enumerate(order)}
    events = []
    for key, entry in grads.items():
        if (key, "out") not in position:
            continue  # no gradient reached its outputs: the loss does not depend on it
        start = 2 * position[(key, "out")]
        end = 2 * position[(key, "in")] + 1 if (key, "in") in position else start + 1
        events.append((start, 0, key, entry))
        events.append((end, 1, key, entry))
    for _, kind, key, entry in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            recorder.pre(entry["path"], tuple(entry["out"][i] for i in sorted(entry["out"])))
        else:
            recorder.post(entry["path"], entry["type"], entry["rule"], entry["names"],
                          tuple(entry["in"][i] for i in sorted(entry["in"])), entry["attrs"])
    return recorder.run


def forward_key_of(forward: RecordedRun, path: str, call: int) -> str:
    """The forward call a backward call replays: a backward numbers a module's calls last first."""
    count = sum(1 for c in forward.calls if c.path == path)
    if not 0 <= call < count:
        raise NotFound(f"no recorded call {call} of {path!r} in the backward record")
    return f"{path}#{count - 1 - call}"


def by_backward_key(forward: RecordedRun) -> RecordedRun:
    """A backward run's forward with its calls' tensors under the backward's keys (calls numbered last first)."""
    counts = Counter(c.path for c in forward.calls)
    renamed = RecordedRun()
    for key, value in forward.tensors.items():
        path, _, call = key.rpartition("#")
        renamed.tensors[f"{path}#{counts[path] - 1 - int(call)}"] = value
    return renamed
