"""MindSporeAdapter: a mindspore.nn.Cell behind the worker interface (numpy in, numpy out)."""

from __future__ import annotations

from collections.abc import Sequence

import mindspore as ms

from ms_worker import determinism, tensors
from ms_worker.recording import MindSporeRecorder
from ms_worker.training import MindSporeTrainer
from proto.codec import NamedArray
from proto.worker.base_adapter import BaseAdapter
from proto.worker.interface import ModuleSpec, ParameterListing, ParameterSpec


class MindSporeAdapter(BaseAdapter):
    """Serves one cell: its Parameters (keyed by Parameter.name, the checkpoint key) are the state."""

    framework = "mindspore"
    framework_version = ms.__version__

    def __init__(self, net: ms.nn.Cell, example_inputs=None, model_spec: str = "", loss=None, optimizer=None,
                 use_input_values: bool = False):
        if not isinstance(net, ms.nn.Cell):
            raise TypeError(f"the ms model must be a mindspore.nn.Cell, got {type(net).__name__}")
        _refuse_duplicate_names(net)
        names = ParameterNames(net)
        self.param_name = names
        super().__init__(net, tensors, example_inputs, model_spec, MindSporeTrainer(net, loss, optimizer, names),
                         MindSporeRecorder(net, rule_type, names), use_input_values)

    def _state(self) -> dict[str, ms.Parameter]:
        return {self.param_name(p): p for p in self.net.get_parameters()}

    def _numel(self, value: ms.Parameter) -> int:
        return int(value.size)

    def _device(self) -> str:
        return f"{ms.get_context('device_target')}:{ms.get_context('device_id')}"

    def _execution_mode(self) -> str:
        return "graph" if ms.get_context("mode") == ms.GRAPH_MODE else "pynative"

    def _fix_random(self, seed: int) -> None:
        determinism.fix_random(seed)

    def _as_native(self, value) -> ms.Tensor:
        return ms.Tensor(value)

    def _assign(self, target: ms.Parameter, tensor: NamedArray) -> None:
        # In place, not set_data: after set_data a second time, an optimizer that already ran (nn.SGD on
        # CPU, PyNative, mindspore 2.10) keeps updating the old buffer and the net never sees its steps.
        value = tensors.native_from_numpy(tensor, share=True)  # a streamed tensor's own buffer: no copy
        try:
            ms.ops.assign(target, value)
        except (TypeError, RuntimeError):  # CPU Assign has no kernel for some dtypes (bfloat16, complex)
            target.set_data(value)

    def _writable_view(self, target: ms.Parameter):
        return tensors.writable_view(target)

    def _call_net(self, inputs: Sequence[NamedArray], train_mode: bool):
        args = [tensors.native_from_numpy(x) for x in inputs]
        self.net.set_train(train_mode)
        return self.net(*args)

    def list_parameters(self) -> ParameterListing:
        owners: dict[str, tuple[str, str]] = {}
        modules = []
        for path, cell in self.net.cells_and_names():
            modules.append(ModuleSpec(path, type(cell).__name__))
            for _, param in cell.parameters_and_names(expand=False):
                owners.setdefault(self.param_name(param), (path, type(cell).__name__))
        params = []
        for name, param in self._state().items():
            path, cell_type = owners.get(name, ("", type(self.net).__name__))
            params.append(ParameterSpec(
                name=name, dtype=tensors.wire_dtype_from_native(param.dtype), shape=tuple(param.shape),
                module_path=path, module_type=cell_type, trainable=bool(param.requires_grad)))
        return self._placed(ParameterListing(tuple(params), tuple(modules)))


class ParameterNames:
    """Each Parameter's name as the net was built (its checkpoint key), kept for the adapter's life.

    MindSpore renames Parameters when a forward slices a CellList (mindone's Mistral runs
    ``self.layers[:n]``, and ``layers.0.mlp.up_proj.weight`` becomes ``0.mlp.up_proj.weight``): the
    state, the gradients and the records would stop matching the listing the weights were planned from.
    """

    def __init__(self, net: ms.nn.Cell):
        self._names = {id(p): p.name for p in net.get_parameters()}

    def __call__(self, param: ms.Parameter) -> str:
        return self._names.get(id(param), param.name)


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
