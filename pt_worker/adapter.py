"""TorchAdapter: a torch.nn.Module behind the worker interface (numpy in, numpy out)."""

from __future__ import annotations

import platform
import socket
from collections.abc import Iterable, Sequence

import torch

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
from pt_worker import determinism, tensors
from pt_worker.recording import TorchRecorder
from pt_worker.training import TorchTrainer

FRAMEWORK = "pytorch"



class TorchAdapter:
    """Serves one torch module: its state_dict entries are the parameters."""

    def __init__(self, net: torch.nn.Module, example_inputs=None, model_spec: str = "", device: str | None = None,
                 loss=None, optimizer=None):
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"the pt model must be a torch.nn.Module, got {type(net).__name__}")
        self.device = torch.device(device) if device else _device_of(net)
        self.net = net.to(self.device)
        self.model_spec = model_spec
        self.example_inputs = [
            tensors.numpy_from_pt(f"input{i}", torch.as_tensor(x)) for i, x in enumerate(as_input_list(example_inputs))
        ]
        self.trainer = TorchTrainer(self.net, self.device, loss, optimizer)
        self.recorder = TorchRecorder(self.net, self.device, _rule_type)

    def _state(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict(keep_vars=True)

    def describe(self) -> WorkerDescription:
        state = self._state()
        return WorkerDescription(
            framework=FRAMEWORK,
            framework_version=torch.__version__,
            python_version=platform.python_version(),
            device=str(self.device),
            protocol_version=PROTOCOL_VERSION,
            model_spec=self.model_spec,
            model_class=type(self.net).__name__,
            parameter_count=len(state),
            parameter_elements=sum(t.numel() for t in state.values()),
            example_inputs=tuple(spec_of(x) for x in self.example_inputs),
            hostname=socket.gethostname(),
            execution_mode="eager",
            factory_loss=type(self.trainer.factory_loss).__name__ if self.trainer.factory_loss is not None else "",
            factory_optimizer=type(self.trainer.factory_optimizer).__name__ if self.trainer.factory_optimizer is not None else "",
        )

    def seed(self, seed: int) -> None:
        determinism.fix_random(seed)

    def list_parameters(self) -> ParameterListing:
        owners: dict[str, tuple[str, torch.nn.Module, bool]] = {}
        modules = []
        for path, module in self.net.named_modules(remove_duplicate=False):
            modules.append(ModuleSpec(path, type(module).__name__, _rule_type(module)))
            prefix = f"{path}." if path else ""
            for local, _ in module.named_parameters(recurse=False):
                owners[prefix + local] = (path, module, False)
            for local, _ in module.named_buffers(recurse=False):
                owners[prefix + local] = (path, module, True)
        params = []
        for name, value in self._state().items():
            path, owner, is_buffer = owners.get(name, ("", self.net, False))
            params.append(
                ParameterSpec(
                    name=name,
                    dtype=tensors.wire_dtype_from_pt(value.dtype),
                    shape=tuple(value.shape),
                    module_path=path,
                    module_type=type(owner).__name__,
                    trainable=bool(getattr(value, "requires_grad", False)) and not is_buffer,
                    is_buffer=is_buffer,
                    module_rule_type=_rule_type(owner),
                )
            )
        return ParameterListing(tuple(params), tuple(modules))

    def get_weights(self, names: Sequence[str] = ()):
        state = self._state()
        for name in select_weights(names, state, FRAMEWORK):
            yield tensors.numpy_from_pt(name, state[name])

    def set_weights(self, incoming: Iterable[NamedArray], strict: bool = False) -> SetWeightsResult:
        state = self._state()
        specs = {p.name: p for p in self.list_parameters().parameters}

        def assign(tensor: NamedArray) -> None:
            with torch.no_grad():
                state[tensor.name].copy_(tensors.pt_from_numpy(tensor))

        return apply_weights(incoming, specs, assign, strict, FRAMEWORK)

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> list[NamedArray]:
        args = [tensors.pt_from_numpy(x, self.device) for x in inputs]
        self.net.train(train_mode)
        try:
            with torch.set_grad_enabled(train_mode):
                result = self.net(*args)
        except (RuntimeError, TypeError, ValueError) as exc:
            shapes = ", ".join(f"{x.name} {list(x.shape)} {x.dtype}" for x in inputs)
            raise BadRequest(f"forward failed on inputs ({shapes}): {type(exc).__name__}: {exc}") from exc
        return [
            tensors.numpy_from_pt(name, value if tensors.is_pt_tensor(value) else torch.as_tensor(value))
            for name, value in flatten_outputs(result, tensors.is_pt_tensor)
        ]


    def train_step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions):
        """One training step (see pt_worker.training); yields loss, grads, state and moments lazily."""
        return self.trainer.step(inputs, target, options)

    def record(self, inputs: Sequence[NamedArray], sketch_size: int, sketch_seed: int, float64_reference: bool):
        """One forward with every module hooked (see pt_worker.recording): (calls, float64 calls, note)."""
        return self.recorder.record(inputs, sketch_size, sketch_seed, float64_reference)

    def get_activations(self, run: str, keys: Sequence[str], inputs: bool, outputs: bool):
        return self.recorder.activations(run, keys, inputs, outputs)

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray]) -> list[NamedArray]:
        return self.recorder.run_module(path, call, float64, inputs)


def _rule_type(module: torch.nn.Module) -> str:
    """The nearest torch.nn class in module's MRO (a user's ``class LayerNorm(nn.LayerNorm)`` -> "LayerNorm")."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.") and cls is not torch.nn.Module:
            return cls.__name__
    return type(module).__name__


def _device_of(net: torch.nn.Module) -> torch.device:
    for tensor in net.state_dict().values():
        return tensor.device
    return torch.device("cpu")
