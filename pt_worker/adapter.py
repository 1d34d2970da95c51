"""TorchAdapter: a torch.nn.Module behind the worker interface (numpy in, numpy out)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from proto.codec import NamedArray
from proto.worker.base_adapter import BaseAdapter
from proto.worker.interface import ModuleSpec, ParameterListing, ParameterSpec
from pt_worker import determinism, tensors
from pt_worker.ranks import dtensor_placements, local_tensor
from pt_worker.recording import TorchRecorder
from pt_worker.training import TorchTrainer


class TorchAdapter(BaseAdapter):
    """Serves one torch module: its state_dict entries are the parameters."""

    framework = "pytorch"
    framework_version = torch.__version__

    def __init__(self, net: torch.nn.Module, example_inputs=None, model_spec: str = "", device: str | None = None,
                 loss=None, optimizer=None, use_input_values: bool = False):
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"the pt model must be a torch.nn.Module, got {type(net).__name__}")
        self.torch_device = torch.device(device) if device else _device_of(net)
        net = net.to(self.torch_device)
        super().__init__(net, tensors, example_inputs, model_spec, TorchTrainer(net, self.torch_device, loss, optimizer),
                         TorchRecorder(net, self.torch_device, rule_type), use_input_values)

    def _state(self) -> dict[str, torch.Tensor]:
        state = self.net.state_dict(keep_vars=True)
        return {name: local_tensor(value) for name, value in state.items()}  # a DTensor's: this rank's slice

    def set_placements(self, declared) -> None:
        """The factory's placements, and each DTensor's own (torch's tensor parallelism) for the rest."""
        super().set_placements(declared)
        found = dtensor_placements(self.net.state_dict(keep_vars=True))
        self.placements = {**found, **self.placements}

    def _numel(self, value: torch.Tensor) -> int:
        return value.numel()

    def _device(self) -> str:
        return str(self.torch_device)

    def _execution_mode(self) -> str:
        return "eager"

    def _fix_random(self, seed: int) -> None:
        determinism.fix_random(seed)

    def _as_native(self, value) -> torch.Tensor:
        return torch.as_tensor(value)

    def _assign(self, target: torch.Tensor, tensor: NamedArray) -> None:
        with torch.no_grad():
            target.copy_(tensors.native_from_numpy(tensor))

    def _call_net(self, inputs: Sequence[NamedArray], train_mode: bool):
        args = [tensors.native_from_numpy(x, self.torch_device) for x in inputs]
        self.net.train(train_mode)
        with torch.set_grad_enabled(train_mode):
            return self.net(*args)

    def list_parameters(self) -> ParameterListing:
        owners: dict[str, tuple[str, torch.nn.Module, bool]] = {}
        modules = []
        for path, module in self.net.named_modules(remove_duplicate=False):
            modules.append(ModuleSpec(path, type(module).__name__, rule_type(module)))
            prefix = f"{path}." if path else ""
            for local, _ in module.named_parameters(recurse=False):
                owners[prefix + local] = (path, module, False)
            for local, _ in module.named_buffers(recurse=False):
                owners[prefix + local] = (path, module, True)
        params = []
        for name, value in self._state().items():
            path, owner, is_buffer = owners.get(name, ("", self.net, False))
            params.append(ParameterSpec(
                name=name, dtype=tensors.wire_dtype_from_native(value.dtype), shape=tuple(value.shape),
                module_path=path, module_type=type(owner).__name__,
                trainable=bool(getattr(value, "requires_grad", False)) and not is_buffer, is_buffer=is_buffer,
                module_rule_type=rule_type(owner)))
        return self._placed(ParameterListing(tuple(params), tuple(modules)))


def rule_type(module: torch.nn.Module) -> str:
    """The nearest torch.nn class in module's MRO (a user's ``class LayerNorm(nn.LayerNorm)`` -> "LayerNorm")."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.") and cls is not torch.nn.Module:
            return cls.__name__
    return type(module).__name__


def _device_of(net: torch.nn.Module) -> torch.device:
    for tensor in net.state_dict().values():
        return tensor.device
    return torch.device("cpu")
