"""The worker interface: what every framework adapter offers, in numpy terms.

The gRPC servicer serves any WorkerAdapter; the coordinator's client offers the same methods over
the wire, and coordinator/local.py hands live adapters to the session in same-process mode, so the
session code path is the same in all three modes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from proto.codec import NamedArray

PROTOCOL_VERSION = "1.3"  # 1.1: ListDir / GetTensors; 1.2: TrainStep; 1.3: Record / GetActivations / RunModule


@dataclass(frozen=True)
class TensorSpec:
    """Name, wire dtype and shape of a tensor, without data."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ParameterSpec:
    """One named tensor of a net's state (parameter or buffer) and the module that owns it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    module_path: str
    module_type: str
    trainable: bool
    is_buffer: bool = False
    module_rule_type: str = ""  # nearest framework class of the owner; layer rules match on it

    @property
    def local_name(self) -> str:
        """The name inside its owning module ("weight" for "blocks.0.fc.weight")."""
        if self.module_path and self.name.startswith(self.module_path + "."):
            return self.name[len(self.module_path) + 1 :]
        return self.name


@dataclass(frozen=True)
class ModuleSpec:
    path: str
    type: str
    rule_type: str = ""


@dataclass(frozen=True)
class ParameterListing:
    parameters: tuple[ParameterSpec, ...]
    modules: tuple[ModuleSpec, ...]


@dataclass(frozen=True)
class WorkerDescription:
    framework: str
    framework_version: str
    python_version: str
    device: str
    protocol_version: str
    model_spec: str
    model_class: str
    parameter_count: int
    parameter_elements: int
    example_inputs: tuple[TensorSpec, ...] = ()
    hostname: str = ""
    execution_mode: str = ""
    factory_loss: str = ""
    factory_optimizer: str = ""


@dataclass(frozen=True)
class SetWeightsResult:
    loaded: int
    missing: tuple[str, ...] = field(default=())


LOSSES = ("mse", "cross-entropy", "factory")
OPTIMIZERS = ("sgd", "adam", "factory")
TARGET_NAME = "target"
LOSS_NAME = "loss"
GRAD_PREFIX = "grad:"
STATE_PREFIX = "state:"
MOMENT_PREFIXES = ("moment1:", "moment2:")  # Adam's first and second moments (torch exp_avg / exp_avg_sq)


DROPOUT_WORDS = ("dropout", "droppath", "drop_path", "stochasticdepth")


def is_dropout_class(class_name: str) -> bool:
    """Whether a module / cell class is a dropout (or drop-path) layer, which a training step turns off."""
    lowered = class_name.lower()
    return any(word in lowered for word in DROPOUT_WORDS)


@dataclass(frozen=True)
class TrainOptions:
    """How a worker runs one training step; both sides get the same options."""

    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.01
    reset: bool = False
    return_state: bool = True
    return_moments: bool = True


class WorkerAdapter(Protocol):
    """One framework's net behind numpy in, numpy out."""

    def describe(self) -> WorkerDescription: ...

    def seed(self, seed: int) -> None: ...

    def list_parameters(self) -> ParameterListing: ...

    def get_weights(self, names: Sequence[str] = ()) -> Iterator[NamedArray]: ...

    def set_weights(self, tensors: Iterable[NamedArray], strict: bool = False) -> SetWeightsResult: ...

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> list[NamedArray]: ...

    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions) -> list[NamedArray]: ...


def as_input_list(inputs) -> list:
    """A factory's example inputs as a list: None -> [], one tensor -> [it], a sequence -> list."""
    if inputs is None:
        return []
    if isinstance(inputs, (tuple, list)):
        return list(inputs)
    return [inputs]


def input_name(index: int) -> str:
    """Wire name of the index-th positional input."""
    return f"input{index}"


def flatten_outputs(value: object, is_tensor, prefix: str = "output") -> Iterator[tuple[str, object]]:
    """Yield (name, leaf) for every tensor leaf in a nested output; None leaves are skipped.

    Names: "output" for a single tensor, "output.0", "output.1" for sequences, "output.key" for
    dicts, nested with dots. Both workers use this, so the same structure gets the same names.
    """
    if value is None:
        return
    if is_tensor(value):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from flatten_outputs(item, is_tensor, f"{prefix}.{key}")
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from flatten_outputs(item, is_tensor, f"{prefix}.{index}")
    else:
        yield prefix, value  # a Python number or numpy value; the adapter turns it into an array


def spec_of(tensor: NamedArray) -> TensorSpec:
    return TensorSpec(tensor.name, tensor.dtype, tensor.shape)


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
    from proto.errors import BadRequest

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
    from proto.errors import NotFound

    if not names:
        return list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise NotFound(f"{len(unknown)} unknown {framework} parameter(s): {', '.join(unknown[:10])}")
    return list(names)
