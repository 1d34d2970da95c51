"""One training step of a MindSpore net: loss, named gradients, updated weights and moving statistics, Adam moments.

MindSpore returns gradients as an unnamed tuple in the order of the optimizer's parameters (the
net's trainable_params); they are named here from that order. Dropout policy as on the torch side:
cells whose class name says dropout / drop-path are put in eval mode for the step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import mindspore as ms

from ms_worker import tensors
from proto.codec import NamedArray
from proto.errors import BadRequest
from proto.worker.base_trainer import ADAM_BETAS, ADAM_EPS, BaseTrainer, is_dropout_class
from proto.worker.interface import GRAD_PREFIX, LOSS_NAME, MOMENT_PREFIXES, STATE_PREFIX, TrainOptions
from proto.worker.net_io import NET_ERRORS, flatten_outputs

MOMENT_ATTRS = (("exp_avg", "moment1"), ("exp_avg_sq", "moment2"))  # mint.optim.Adam's, nn.Adam's


class TorchFormulaAdam:
    """torch.optim.Adam's update written with MindSpore ops, so "adam" means the same algorithm on both sides.

    Why not MindSpore's own: nn.Adam adds eps to sqrt(v) BEFORE the bias correction, which changes the
    update wherever a gradient is near zero (measured here: 1e-2 absolute on a conv bias feeding a
    BatchNorm after one step at lr 1e-2); mint.optim.Adam has torch's formula but updates through
    Parameter.add_, which leaves the weights unchanged in PyNative on CPU with mindspore 2.10.
    A factory can still hand in nn.Adam to check the port's real optimizer.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float], eps: float):
        self.parameters = ms.ParameterTuple(params)
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0

    def __call__(self, grads) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self.steps)
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** self.steps)
        for param, grad, exp_avg, exp_avg_sq in zip(self.parameters, grads, self.exp_avg, self.exp_avg_sq):
            new_avg = exp_avg * beta1 + grad * (1 - beta1)
            new_avg_sq = exp_avg_sq * beta2 + grad * grad * (1 - beta2)
            denom = ms.ops.sqrt(new_avg_sq) / bias_correction2_sqrt + self.eps
            ms.ops.assign(exp_avg, new_avg)
            ms.ops.assign(exp_avg_sq, new_avg_sq)
            ms.ops.assign(param, param - step_size * (new_avg / denom))


class MindSporeTrainer(BaseTrainer):
    """Holds the loss and the optimizer across the steps of one run."""

    role = "ms"

    def __init__(self, net: ms.nn.Cell, factory_loss=None, factory_optimizer=None, param_name=None):
        super().__init__(net, factory_loss, factory_optimizer)
        self.param_name = param_name or (lambda param: param.name)

    def _loss_of_native(self, loss_name: str, loss_fn, outputs, goal):
        if loss_name == "factory":
            return loss_fn(outputs, goal)
        leaves = [value for _, value in flatten_outputs(outputs, tensors.is_native_tensor)]
        if not leaves:
            raise BadRequest("the net returned no tensor to take a loss of")
        prediction = leaves[0]
        return loss_fn(prediction, goal if loss_name == "cross-entropy" else goal.astype(prediction.dtype))

    def loss_of(self, loss_name: str, loss_fn, outputs, target: NamedArray):
        """The loss of a forward's outputs against target (the first tensor output, unless the factory's loss)."""
        goal = tensors.native_from_numpy(target)
        if loss_name == "cross-entropy":
            goal = goal.astype(ms.int32)
        return self._loss_of_native(loss_name, loss_fn, outputs, goal)

    def _builtin_loss(self, name: str):
        return ms.nn.MSELoss() if name == "mse" else ms.nn.CrossEntropyLoss()

    def _trainable_parameters(self) -> list:
        return self.net.trainable_params()

    def _sgd(self, params: list, lr: float):
        return ms.nn.SGD(params, learning_rate=lr)

    def _adam(self, params: list, lr: float):
        return TorchFormulaAdam(params, lr, ADAM_BETAS, ADAM_EPS)

    def _is_optimizer(self, value) -> bool:
        return isinstance(value, ms.nn.Optimizer)

    def _step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions, loss_fn,
              optimizer) -> Iterator[NamedArray]:
        args = [tensors.native_from_numpy(x) for x in inputs]
        goal = tensors.native_from_numpy(target)
        if options.loss == "cross-entropy":
            goal = goal.astype(ms.int32)  # MindSpore's CrossEntropyLoss takes int32 class indices only
        self.net.set_train(True)
        for _, cell in self.net.cells_and_names():
            if is_dropout_class(type(cell).__name__):
                cell.set_train(False)

        def loss_of(*values):
            return self._loss_of_native(options.loss, loss_fn, self.net(*values[:-1]), values[-1])

        params = list(optimizer.parameters)
        try:
            loss, grads = ms.value_and_grad(loss_of, None, optimizer.parameters)(*args, goal)
            named_grads = [tensors.numpy_from_native(GRAD_PREFIX + self.param_name(p), g) for p, g in zip(params, grads)]
            loss_value = tensors.numpy_from_native(LOSS_NAME, loss)
        except NET_ERRORS as exc:
            raise BadRequest(f"training step failed: {type(exc).__name__}: {exc}") from exc
        yield loss_value
        yield from named_grads
        optimizer(grads)
        if options.return_state:
            for param in self.net.get_parameters():
                yield tensors.numpy_from_native(STATE_PREFIX + self.param_name(param), param)
        if options.return_moments:
            for prefix, attrs in zip(MOMENT_PREFIXES, MOMENT_ATTRS):
                moments = next((getattr(optimizer, a) for a in attrs if getattr(optimizer, a, None) is not None), ())
                for param, moment in zip(params, moments):
                    yield tensors.numpy_from_native(prefix + self.param_name(param), moment)
