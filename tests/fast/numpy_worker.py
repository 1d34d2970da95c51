"""A numpy "framework" behind the worker interface: a tiny net, its adapter, trainer and recorder.

The fast test tier serves this instead of torch or MindSpore, so the servicer, the client, the session
and the error mapping run without either framework. It is also a worked example of the adapter
interface: every hook pt_worker / ms_worker fill with framework calls is filled here with plain numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import SimpleNamespace

import numpy as np

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import BadRequest, NotFound
from proto.worker.base_adapter import BaseAdapter
from proto.worker.base_trainer import BaseTrainer
from proto.worker.call_recorder import BaseRecorder, CallRecorder, RecordedRun, replay_args
from proto.worker.interface import (
    GRAD_PREFIX,
    LOSS_NAME,
    STATE_PREFIX,
    ModuleSpec,
    ParameterListing,
    ParameterSpec,
    RecordOptions,
    RecordResult,
    TrainOptions,
)

IN_FEATURES, HIDDEN, OUT_FEATURES = 4, 8, 3
LAYERS = {"fc1": (HIDDEN, IN_FEATURES), "fc2": (OUT_FEATURES, HIDDEN)}  # path -> weight shape (out, in)
LAYER_TYPE = {"pytorch": "Linear", "mindspore": "Dense"}  # what each framework calls a linear layer
ROLE = {"pytorch": "pt", "mindspore": "ms"}
DROPOUT = 0.5  # applied to the hidden layer in train mode, so Seed has something to fix
NET_ERRORS = (TypeError, ValueError)  # what numpy raises for inputs that do not fit


# -- the tensor boundary: the verbs pt_worker.tensors / ms_worker.tensors offer, over numpy arrays ------------

def numpy_from_native(name: str, array: np.ndarray) -> NamedArray:
    """A NamedArray holding a copy of array (later in-place updates of the net must not reach it)."""
    return NamedArray(name, np.array(array, copy=True))


def native_from_numpy(tensor: NamedArray) -> np.ndarray:
    """A writable array with tensor's values (decoded arrays are read-only views of the wire bytes)."""
    return np.array(tensor.array, copy=True)


def is_native_tensor(value: object) -> bool:
    """Whether value is a tensor of this "framework" (a numpy array)."""
    return isinstance(value, np.ndarray)


def wire_dtype_from_native(dtype: np.dtype) -> str:
    """The wire name of a native dtype."""
    return dtypes.wire_dtype_from_numpy(dtype)


tensors = SimpleNamespace(numpy_from_native=numpy_from_native, native_from_numpy=native_from_numpy,
                          is_native_tensor=is_native_tensor, wire_dtype_from_native=wire_dtype_from_native)


# -- the net ---------------------------------------------------------------------------------------------------

class TinyNet:
    """``fc2(dropout(relu(fc1(x)))) + offset``; its state a dict of named arrays; ``hooks`` sees every call."""

    def __init__(self, params: dict[str, np.ndarray], layer_type: str, offset: float = 0.0):
        self.params = params
        self.layer_type = layer_type
        self.offset = offset
        self.training = False
        self.rng = np.random.default_rng(0)
        self.hooks: CallRecorder | None = None

    @classmethod
    def initialised(cls, seed: int, layer_type: str, offset: float = 0.0) -> TinyNet:
        """A net with float32 weights and biases drawn from N(0, 1) by seed."""
        rng = np.random.default_rng(seed)
        params = {}
        for path, shape in LAYERS.items():
            params[f"{path}.weight"] = rng.standard_normal(shape, dtype=np.float32)
            params[f"{path}.bias"] = rng.standard_normal(shape[0], dtype=np.float32)
        return cls(params, layer_type, offset)

    def astype(self, dtype) -> TinyNet:
        """A copy of the net with its state cast to dtype (the recorder's float64 reference)."""
        return TinyNet({k: v.astype(dtype) for k, v in self.params.items()}, self.layer_type, self.offset)

    @property
    def module_paths(self) -> tuple[str, ...]:
        """Every module, root ("") first."""
        return ("", *LAYERS)

    def type_of(self, path: str) -> str:
        """The class name of the module at path."""
        return type(self).__name__ if path == "" else self.layer_type

    def own_names(self, path: str) -> list[str]:
        """The state entries the module at path owns itself (not its children's)."""
        return [] if path == "" else [f"{path}.weight", f"{path}.bias"]

    def __call__(self, *args):
        return self.call("", *args)

    def call(self, path: str, *args):
        """Run the module at path, telling the hooks (a CallRecorder) before and after when they are set."""
        if self.hooks is None:
            return self._run(path, *args)
        self.hooks.pre(path, args)
        output = self._run(path, *args)
        self.hooks.post(path, self.type_of(path), self.type_of(path), self.own_names(path), output)
        return output

    def _run(self, path: str, *args):
        return self._forward(*args) if path == "" else self._linear(path, *args)

    def _linear(self, path: str, x: np.ndarray) -> np.ndarray:
        return x @ self.params[f"{path}.weight"].T + self.params[f"{path}.bias"]

    def _forward(self, x: np.ndarray) -> np.ndarray:
        hidden = np.maximum(self.call("fc1", x), 0)
        if self.training:
            hidden = hidden * (self.rng.random(hidden.shape) >= DROPOUT) / (1 - DROPOUT)
        return self.call("fc2", hidden) + self.offset


# -- the adapter -----------------------------------------------------------------------------------------------

class FakeAdapter(BaseAdapter):
    """A TinyNet behind the worker interface, posing as a "pytorch" or a "mindspore" worker."""

    framework_version = f"numpy {np.__version__}"

    def __init__(self, framework: str = "pytorch", init_seed: int = 0, offset: float = 0.0, batch: int = 2):
        self.framework = framework
        net = TinyNet.initialised(init_seed, LAYER_TYPE[framework], offset)
        example = np.zeros((batch, IN_FEATURES), dtype=np.float32)
        super().__init__(net, tensors, example, f"tests.fast.numpy_worker:{framework}",
                         NumpyTrainer(net, ROLE[framework]), NumpyRecorder(net))

    def _state(self) -> dict[str, np.ndarray]:
        return self.net.params

    def list_parameters(self) -> ParameterListing:
        params = []
        for name, value in self._state().items():
            path = name.rpartition(".")[0]
            layer = self.net.type_of(path)
            params.append(ParameterSpec(name=name, dtype=wire_dtype_from_native(value.dtype), shape=value.shape,
                                        module_path=path, module_type=layer, trainable=True, module_rule_type=layer))
        modules = tuple(ModuleSpec(p, self.net.type_of(p), self.net.type_of(p)) for p in self.net.module_paths)
        return ParameterListing(tuple(params), modules)

    def _assign(self, target: np.ndarray, tensor: NamedArray) -> None:
        target[...] = tensor.array

    def _call_net(self, inputs: Sequence[NamedArray], train_mode: bool):
        self.net.training = train_mode
        return self.net(*[native_from_numpy(x) for x in inputs])

    def _fix_random(self, seed: int) -> None:
        self.net.rng = np.random.default_rng(seed)

    def _as_native(self, value) -> np.ndarray:
        return np.asarray(value)

    def _numel(self, value: np.ndarray) -> int:
        return int(value.size)

    def _device(self) -> str:
        return "cpu"

    def _execution_mode(self) -> str:
        return "eager" if self.framework == "pytorch" else "pynative"


# -- training --------------------------------------------------------------------------------------------------

def mse(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared error and its gradient with respect to prediction."""
    diff = prediction - target
    return np.mean(diff * diff), 2 * diff / diff.size


class Sgd:
    """Plain SGD (no momentum) over named arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], names: list[str], lr: float):
        self.params, self.names, self.lr = params, names, lr

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update: ``param -= lr * grad``."""
        for name in self.names:
            self.params[name] -= self.lr * grads[name]


class NumpyTrainer(BaseTrainer):
    """The TinyNet's training step: mse, SGD and gradients by hand (the fake has no autograd)."""

    def __init__(self, net: TinyNet, role: str):
        super().__init__(net)
        self.role = role

    def _builtin_loss(self, name: str):
        if name != "mse":
            raise BadRequest(f"loss {name!r}: the numpy worker has only mse")
        return mse

    def _trainable_parameters(self) -> list:
        return list(self.net.params)

    def _sgd(self, params: list, lr: float) -> Sgd:
        return Sgd(self.net.params, params, lr)

    def _adam(self, params: list, lr: float):
        raise BadRequest("optimizer 'adam': the numpy worker has only sgd")

    def _is_optimizer(self, value) -> bool:
        return isinstance(value, Sgd)

    def _step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions, loss_fn,
              optimizer) -> Iterator[NamedArray]:
        if len(inputs) != 1:
            raise BadRequest(f"training step failed: the numpy net takes 1 input, {len(inputs)} were sent")
        try:
            loss, grads = self._loss_and_grads(inputs[0].array, target.array, loss_fn)
        except NET_ERRORS as exc:
            raise BadRequest(f"training step failed: {type(exc).__name__}: {exc}") from exc
        yield numpy_from_native(LOSS_NAME, np.asarray(loss, dtype=np.float32))
        for name, grad in grads.items():
            yield numpy_from_native(GRAD_PREFIX + name, grad)
        optimizer.step(grads)
        if options.return_state:
            for name, value in self.net.params.items():
                yield numpy_from_native(STATE_PREFIX + name, value)

    def _loss_and_grads(self, x: np.ndarray, target: np.ndarray, loss_fn) -> tuple[float, dict[str, np.ndarray]]:
        """Forward (eval mode: no dropout) keeping the intermediates, the loss, and backpropagation by hand."""
        p = self.net.params
        pre = x @ p["fc1.weight"].T + p["fc1.bias"]
        hidden = np.maximum(pre, 0)
        output = hidden @ p["fc2.weight"].T + p["fc2.bias"] + self.net.offset
        loss, d_output = loss_fn(output, target)
        d_pre = (d_output @ p["fc2.weight"]) * (pre > 0)
        grads = {"fc1.weight": d_pre.T @ x, "fc1.bias": d_pre.sum(0),
                 "fc2.weight": d_output.T @ hidden, "fc2.bias": d_output.sum(0)}
        return loss, {name: grads[name].astype(np.float32) for name in p}


# -- recording -------------------------------------------------------------------------------------------------

class NumpyRecorder(BaseRecorder):
    """Recorded forwards of the TinyNet ("f32"; "f64": a float64 copy) and replays of its modules."""

    def __init__(self, net: TinyNet):
        super().__init__(net, net.type_of)
        self.reference: TinyNet | None = None

    def record(self, inputs: Sequence[NamedArray], options: RecordOptions) -> RecordResult:
        """Run the net once with every module hooked (and its float64 copy when asked); keep the tensors."""
        args = [native_from_numpy(x) for x in inputs]
        self.runs = {"f32": self._record(self.net, args, options)}
        calls = tuple(self.runs["f32"].calls)
        self.reference = self.net.astype(np.float64) if options.float64_reference else None
        if self.reference is None:
            return RecordResult(calls, (), "skipped, as asked (no-reference)")
        self.runs["f64"] = self._record(self.reference, [a.astype(np.float64) for a in args], options)
        return RecordResult(calls, tuple(self.runs["f64"].calls))

    @staticmethod
    def _record(net: TinyNet, args: list, options: RecordOptions) -> RecordedRun:
        recorder = CallRecorder(numpy_from_native, is_native_tensor, options.sketch_size, options.sketch_seed)
        net.hooks, net.training = recorder, False
        try:
            net(*args)
        except NET_ERRORS as exc:
            raise BadRequest(f"recorded forward failed: {type(exc).__name__}: {exc}") from exc
        finally:
            net.hooks = None
        return recorder.run

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray]) -> list[NamedArray]:
        """Run one module on the tensors given, in place of the tensors its recorded call got."""
        net, run = (self.reference, "f64") if float64 else (self.net, "f32")
        if net is None:
            raise NotFound("no float64 copy of the net: record with a float64 reference first")
        if path not in net.module_paths:
            raise NotFound(f"the numpy net has no module {path!r}")
        key = f"{path}#{call}"
        args = [native_from_numpy(x).astype(np.float64) if float64 else native_from_numpy(x) for x in inputs]
        replay, _ = replay_args(self.runs, run, key, args)  # the net takes no keyword arguments
        try:
            result = net.call(path, *replay)
        except NET_ERRORS as exc:
            raise BadRequest(f"replaying {key} failed: {type(exc).__name__}: {exc}") from exc
        return CallRecorder(numpy_from_native, is_native_tensor, 0, 0).arrays(key, "out", result)
