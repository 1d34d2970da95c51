"""MindSporeAdapter: a mindspore.nn.Cell behind the worker interface (numpy in, numpy out)."""

from __future__ import annotations

import platform
import socket
from collections.abc import Iterable, Sequence

import mindspore as ms

from ms_worker import determinism, tensors
from ms_worker.recording import MindSporeRecorder
from ms_worker.training import MindSporeTrainer
from proto.codec import NamedArray
from proto.errors import BadRequest
from proto.worker.interface import (
    PROTOCOL_VERSION,
    ModuleSpec,
    ParameterListing,
    ParameterSpec,
    SetWeightsResult,
    TrainOptions,
    WorkerDescription,
    apply_weights,
    as_input_list,
    flatten_outputs,
    select_weights,
    spec_of,
)

FRAMEWORK = "mindspore"



class MindSporeAdapter:
    """Serves one cell: its Parameters (keyed by Parameter.name, the checkpoint key) are the state."""

    def __init__(self, net: ms.nn.Cell, example_inputs=None, model_spec: str = "", loss=None, optimizer=None):
        if not isinstance(net, ms.nn.Cell):
            raise TypeError(f"the ms model must be a mindspore.nn.Cell, got {type(net).__name__}")
        _refuse_duplicate_names(net)
        self.net = net
        self.model_spec = model_spec
        self.example_inputs = [
            tensors.numpy_from_ms(f"input{i}", x if tensors.is_ms_tensor(x) else ms.Tensor(x))
            for i, x in enumerate(as_input_list(example_inputs))
        ]
        self.trainer = MindSporeTrainer(net, loss, optimizer)
        self.recorder = MindSporeRecorder(net, rule_type)

    def _state(self) -> dict[str, ms.Parameter]:
        return {p.name: p for p in self.net.get_parameters()}

    def describe(self) -> WorkerDescription:
        state = self._state()
        device_id = ms.get_context("device_id")
        mode = "graph" if ms.get_context("mode") == ms.GRAPH_MODE else "pynative"
        return WorkerDescription(
            framework=FRAMEWORK,
            framework_version=ms.__version__,
            python_version=platform.python_version(),
            device=f"{ms.get_context('device_target')}:{device_id}",
            protocol_version=PROTOCOL_VERSION,
            model_spec=self.model_spec,
            model_class=type(self.net).__name__,
            parameter_count=len(state),
            parameter_elements=sum(int(p.size) for p in state.values()),
            example_inputs=tuple(spec_of(x) for x in self.example_inputs),
            hostname=socket.gethostname(),
            execution_mode=mode,
            factory_loss=type(self.trainer.factory_loss).__name__ if self.trainer.factory_loss is not None else "",
            factory_optimizer=type(self.trainer.factory_optimizer).__name__ if self.trainer.factory_optimizer is not None else "",
        )

    def seed(self, seed: int) -> None:
        determinism.fix_random(seed)

    def list_parameters(self) -> ParameterListing:
        owners: dict[str, tuple[str, str]] = {}
        modules = []
        for path, cell in self.net.cells_and_names():
            modules.append(ModuleSpec(path, type(cell).__name__))
            for _, param in cell.parameters_and_names(expand=False):
                owners.setdefault(param.name, (path, type(cell).__name__))
        params = []
        for name, param in self._state().items():
            path, cell_type = owners.get(name, ("", type(self.net).__name__))
            params.append(
                ParameterSpec(
                    name=name,
                    dtype=tensors.wire_dtype_from_ms(param.dtype),
                    shape=tuple(param.shape),
                    module_path=path,
                    module_type=cell_type,
                    trainable=bool(param.requires_grad),
                )
            )
        return ParameterListing(tuple(params), tuple(modules))

    def get_weights(self, names: Sequence[str] = ()):
        state = self._state()
        for name in select_weights(names, state, FRAMEWORK):
            yield tensors.numpy_from_ms(name, state[name])

    def set_weights(self, incoming: Iterable[NamedArray], strict: bool = False) -> SetWeightsResult:
        state = self._state()
        specs = {p.name: p for p in self.list_parameters().parameters}

        def assign(tensor: NamedArray) -> None:
            # In place, not set_data: after set_data a second time, an optimizer that already ran (nn.SGD on
            # CPU, PyNative, mindspore 2.10) keeps updating the old buffer and the net never sees its steps.
            value = tensors.ms_from_numpy(tensor)
            try:
                ms.ops.assign(state[tensor.name], value)
            except (TypeError, RuntimeError):  # CPU Assign has no kernel for some dtypes (bfloat16, complex)
                state[tensor.name].set_data(value)

        return apply_weights(incoming, specs, assign, strict, FRAMEWORK)

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> list[NamedArray]:
        args = [tensors.ms_from_numpy(x) for x in inputs]
        self.net.set_train(train_mode)
        try:
            result = self.net(*args)
            named = list(flatten_outputs(result, tensors.is_ms_tensor))
            # PyNative runs asynchronously: a kernel error surfaces at asnumpy(), so convert inside the try.
            return [
                tensors.numpy_from_ms(name, value if tensors.is_ms_tensor(value) else ms.Tensor(value))
                for name, value in named
            ]
        except (RuntimeError, TypeError, ValueError) as exc:
            shapes = ", ".join(f"{x.name} {list(x.shape)} {x.dtype}" for x in inputs)
            raise BadRequest(f"forward failed on inputs ({shapes}): {type(exc).__name__}: {exc}") from exc

    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions):
        """One training step (see ms_worker.training); yields loss, grads, state and moments lazily."""
        return self.trainer.step(inputs, target, options)

    def record(self, inputs: Sequence[NamedArray], sketch_size: int, sketch_seed: int, float64_reference: bool):
        """One forward with every cell hooked (see ms_worker.recording): (calls, [], why no float64 run)."""
        return self.recorder.record(inputs, sketch_size, sketch_seed, float64_reference)

    def get_activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool):
        return self.recorder.activations(run, keys, inputs, outputs)

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray]) -> list[NamedArray]:
        return self.recorder.run_module(path, call, float64, inputs)


def _refuse_duplicate_names(net: ms.nn.Cell) -> None:
    """Two distinct Parameters with one name would be one checkpoint key: weights would land in the wrong one."""
    seen: dict[str, str] = {}
    ids: dict[str, int] = {}
    for path, param in net.parameters_and_names():
        if param.name in seen and ids[param.name] != id(param):
            raise ValueError(
                f"the MindSpore net has two parameters named {param.name!r} (at {seen[param.name]!r} and {path!r}); "
                "a cell assigned after its parent was built keeps the name it was created with: build it in "
                "__init__, or rename after building: for path, p in net.parameters_and_names(): p.name = path")
        seen.setdefault(param.name, path)
        ids.setdefault(param.name, id(param))


def rule_type(cell) -> str:
    """The nearest mindspore.nn class in cell's MRO (a user's ``class LayerNorm(nn.LayerNorm)`` -> "LayerNorm")."""
    for cls in type(cell).__mro__:
        if cls.__module__.startswith("mindspore.nn.") and cls is not ms.nn.Cell:
            return cls.__name__
    return type(cell).__name__
