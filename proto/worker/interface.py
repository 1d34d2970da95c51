"""The worker interface: one method per RPC, in numpy terms; every result a frozen dataclass.

The gRPC servicer serves any ModelWorker (plus the directories a worker was started with, a
DirectoryServer); the coordinator's client offers the same methods over the wire, and
coordinator/local.py hands live adapters to the session in same-process mode, so the session code
path is the same in all three modes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from proto.codec import NamedArray, TensorSpec
from proto.errors import BadRequest
from proto.formats.npy_files import NpyEntry
from proto.worker.module_records import ModuleCall

PROTOCOL_VERSION = "1.8"  # 1.1: ListDir / GetTensors; 1.2: TrainStep; 1.3: Record / GetActivations / RunModule;
# 1.4: GetExampleInputs, Forward names the non-tensor outputs it left out (trailing metadata);
# 1.5: sessions (one coordinator at a time, EndSession puts trained weights back), Describe's weights_state;
# 1.6: ranks (Describe's rank / world_size / rank_addresses, ParameterInfo's placement, ordered compute calls);
# 1.7: Describe's activation_paths (declared activations made whole), RunModule across ranks;
# 1.8: weight digests are XXH3-128, tagged (codec.DIGEST_ALGORITHM)


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
    placement: str = ""  # over the ranks: "" / "replicate", or "shard" along shard_dim (shape: this rank's slice)
    shard_dim: int = 0

    @property
    def local_name(self) -> str:
        """The name inside its owning module ("weight" for "blocks.0.fc.weight")."""
        if self.module_path and self.name.startswith(self.module_path + "."):
            return self.name[len(self.module_path) + 1 :]
        return self.name


@dataclass(frozen=True)
class ModuleSpec:
    """One module / cell of a net: its path ("" for the root), class and nearest framework class."""

    path: str
    type: str
    rule_type: str = ""


@dataclass(frozen=True)
class ParameterListing:
    """A net's state entries in registration order, and every module / cell, root first."""

    parameters: tuple[ParameterSpec, ...]
    modules: tuple[ModuleSpec, ...]


@dataclass(frozen=True)
class WorkerDescription:
    """What Describe answers: the framework, its environment, the model and what its factory supplied."""

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
    example_input_values: bool = False  # the factory asks for its example inputs to be used as they are
    weights_state: str = ""  # what last changed the net's weights (WEIGHTS_AS_BUILT, ...)
    rank: int = 0  # one rank of a distributed job (world_size > 1), or the one process
    world_size: int = 1
    rank_addresses: tuple[str, ...] = ()
    launcher: str = ""
    pid: int = 0
    activation_paths: tuple[str, ...] = ()  # modules whose declared slices / partial sums recordings make whole


WEIGHTS_AS_BUILT = "as built"
WEIGHTS_SET = "set by SetWeights"
WEIGHTS_TRAINED = "changed by TrainStep"
WEIGHTS_PARTIAL = "partly set by a failed SetWeights"


@dataclass(frozen=True)
class EndSessionResult:
    """What ending a session put back: tensors restored to their values before its first training step."""

    restored: int = 0
    note: str = ""


@dataclass(frozen=True)
class SetWeightsResult:
    """How many tensors a SetWeights stream loaded, and the parameters it left alone."""

    loaded: int
    missing: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ForwardResult:
    """A net's outputs, flattened and named (proto/worker/net_io.py), and the non-tensor leaves left out."""

    outputs: tuple[NamedArray, ...]
    skipped: tuple[str, ...] = ()  # "NAME (TYPE)": a KV cache, None, a number in the output structure


LOSSES = ("mse", "cross-entropy", "factory")
OPTIMIZERS = ("sgd", "adam", "factory")
TARGET_NAME = "target"
LOSS_NAME = "loss"
GRAD_PREFIX = "grad:"
STATE_PREFIX = "state:"
MOMENT_PREFIXES = ("moment1:", "moment2:")  # Adam's first and second moments (torch exp_avg / exp_avg_sq)
REFERENCE_PREFIX = "ref:"  # before any of the names above: the same tensor from torch's float64 step


@dataclass(frozen=True)
class TrainOptions:
    """How a worker runs one training step; both sides get the same options."""

    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.01
    reset: bool = False
    return_state: bool = True
    return_moments: bool = True
    float64_reference: bool = False  # the torch worker also streams its float64 step ("ref:" names); others ignore it

    def problem(self) -> str:
        """What is wrong with these options, "" when nothing: an unknown loss or optimizer, a learning rate that
        is not a positive number. Workers refuse them (check); the CLI says so before starting any."""
        if self.loss not in LOSSES:
            return f"unknown loss {self.loss!r}; known: {', '.join(LOSSES)}"
        if self.optimizer not in OPTIMIZERS:
            return f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}"
        if not (self.lr > 0 and math.isfinite(self.lr)):
            return f"the learning rate must be a finite positive number, got {self.lr}"
        return ""

    def check(self) -> None:
        """Raise BadRequest naming the problem, if there is one."""
        if self.problem():
            raise BadRequest(f"TrainStep: {self.problem()}")


@dataclass(frozen=True)
class RecordOptions:
    """How a worker records one hooked forward for locate."""

    sketch_size: int
    sketch_seed: int
    float64_reference: bool
    backward_loss: str = ""  # record the backward of this loss (against the input named TARGET_NAME) instead


@dataclass(frozen=True)
class RecordResult:
    """One recorded forward: every module call, the float64 reference's calls, and why there are none."""

    calls: tuple[ModuleCall, ...]
    reference_calls: tuple[ModuleCall, ...] = ()
    reference_note: str = ""


@dataclass(frozen=True)
class DirListing:
    """A served directory as its worker resolved it, and the .npy files directly inside it."""

    path: str
    entries: tuple[NpyEntry, ...]


class ModelWorker(Protocol):
    """One framework's net behind numpy in, numpy out: the model RPCs."""

    def describe(self) -> WorkerDescription: ...

    def seed(self, seed: int) -> None: ...

    def list_parameters(self) -> ParameterListing: ...

    def get_weights(self, names: Sequence[str] = ()) -> Iterator[NamedArray]: ...

    def weight_digests(self, names: Sequence[str] = ()) -> list[tuple[TensorSpec, bytes]]: ...

    def set_weights(self, tensors: Iterable[NamedArray], strict: bool = False, placer=None) -> SetWeightsResult: ...

    def weight_placer(self, target_of=lambda name: name): ...  # a worker side's WeightPlacer or None

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> ForwardResult: ...

    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray,
                   options: TrainOptions) -> Iterator[NamedArray]: ...

    def record(self, inputs: Sequence[NamedArray], options: RecordOptions) -> RecordResult: ...

    def get_activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool) -> Iterator[NamedArray]: ...

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray],
                   backward: bool = False) -> list[NamedArray]: ...

    def get_example_inputs(self) -> Iterator[NamedArray]: ...

    def end_session(self) -> EndSessionResult: ...


class DirectoryServer(Protocol):
    """The directories of saved tensors a worker serves: the ListDir and GetTensors RPCs."""

    def list_dir(self, path: str) -> DirListing: ...

    def get_tensors(self, path: str, names: Sequence[str]) -> Iterator[NamedArray]: ...


class Worker(ModelWorker, DirectoryServer, Protocol):
    """Every RPC of the Worker service (what the coordinator's client offers)."""


# interface method -> its RPC, for messages that name the call (same-process mode names it too)
RPC_NAMES: dict[str, str] = {
    "describe": "Describe", "seed": "Seed", "list_parameters": "ListParameters", "get_weights": "GetWeights",
    "set_weights": "SetWeights", "forward": "Forward", "train_step": "TrainStep", "record": "Record",
    "get_activations": "GetActivations", "run_module": "RunModule", "list_dir": "ListDir",
    "get_tensors": "GetTensors", "get_example_inputs": "GetExampleInputs", "end_session": "EndSession",
}
