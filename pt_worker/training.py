"""One training step of a torch net: loss, named gradients, updated weights and buffers, Adam moments.

Dropout policy: modules whose class name says dropout / drop-path are put in eval mode for the step
(identity), the rest of the net trains; functional dropout inside a forward is not reachable from here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch

from proto.codec import NamedArray
from proto.errors import BadRequest
from proto.worker.base_trainer import ADAM_BETAS, ADAM_EPS, BaseTrainer, is_dropout_class
from proto.worker.interface import (
    GRAD_PREFIX,
    LOSS_NAME,
    MOMENT_PREFIXES,
    REFERENCE_PREFIX,
    STATE_PREFIX,
    TrainOptions,
)
from proto.worker.net_io import NET_ERRORS, flatten_outputs
from pt_worker import tensors

MOMENT_KEYS = ("exp_avg", "exp_avg_sq")  # torch.optim.Adam's state keys


class TorchTrainer(BaseTrainer):
    """Holds the loss and the optimizer across the steps of one run."""

    role = "pt"

    def __init__(self, net: torch.nn.Module, device: torch.device, factory_loss=None, factory_optimizer=None):
        super().__init__(net, factory_loss, factory_optimizer)
        self.device = device

    def _builtin_loss(self, name: str):
        return torch.nn.MSELoss() if name == "mse" else torch.nn.CrossEntropyLoss()

    def _trainable_parameters(self) -> list:
        return [p for p in self.net.parameters() if p.requires_grad]

    def _sgd(self, params: list, lr: float):
        return torch.optim.SGD(params, lr=lr)

    def _adam(self, params: list, lr: float):
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS)

    def _is_optimizer(self, value) -> bool:
        return isinstance(value, torch.optim.Optimizer)

    def _step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions, loss_fn,
              optimizer) -> Iterator[NamedArray]:
        args = [tensors.native_from_numpy(x, self.device) for x in inputs]
        _train_without_dropout(self.net)
        reference = _float64_copy(self.net, optimizer, loss_fn) if options.float64_reference else None
        yield from self._run(self.net, optimizer, loss_fn, args, target, options, "")
        if reference is not None:  # the same step from the same state in float64: the noise floor of every tensor
            net64, optimizer64, loss64 = reference
            args64 = [a.double() if a.is_floating_point() else a for a in args]
            try:
                yield from self._run(net64, optimizer64, loss64, args64, target, options, REFERENCE_PREFIX)
            except BadRequest:
                return  # a net that cannot train in float64: the coordinator judges by rtol/atol alone

    def _run(self, net, optimizer, loss_fn, args, target: NamedArray, options: TrainOptions,
             prefix: str) -> Iterator[NamedArray]:
        """Forward, loss, backward and one update of net; yield its tensors, each name after prefix."""
        optimizer.zero_grad(set_to_none=True)
        try:
            outputs = net(*args)
            loss = self.loss_of(options.loss, loss_fn, outputs, target)
            loss.backward()
        except NET_ERRORS as exc:
            raise BadRequest(f"training step failed: {type(exc).__name__}: {exc}") from exc
        named = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
        yield tensors.numpy_from_native(prefix + LOSS_NAME, loss)
        for name, param in named:
            if param.grad is not None:  # a parameter the loss does not reach has no gradient; the coordinator says so
                yield tensors.numpy_from_native(prefix + GRAD_PREFIX + name, param.grad)
        optimizer.step()
        if options.return_state:
            for name, value in net.state_dict(keep_vars=True).items():
                yield tensors.numpy_from_native(prefix + STATE_PREFIX + name, value)
        if options.return_moments:
            for name, param in named:
                state = optimizer.state.get(param, {})
                for moment, key in zip(MOMENT_PREFIXES, MOMENT_KEYS):
                    if key in state:
                        yield tensors.numpy_from_native(prefix + moment + name, state[key])

    def loss_of(self, loss_name: str, loss_fn, outputs, target: NamedArray):
        """The loss of a forward's outputs against target (the first tensor output, unless the factory's loss)."""
        return loss_fn(*self._loss_args(loss_name, outputs, target))

    def _loss_args(self, loss_name: str, outputs, target: NamedArray) -> tuple:
        goal = tensors.native_from_numpy(target, self.device)
        if loss_name == "factory":
            return outputs, goal
        leaves = [value for _, value in flatten_outputs(outputs, tensors.is_native_tensor)]
        if not leaves:
            raise BadRequest("the net returned no tensor to take a loss of")
        prediction = leaves[0]
        goal = goal.long() if loss_name == "cross-entropy" else goal.to(prediction.dtype)
        return prediction, goal


def _train_without_dropout(net: torch.nn.Module) -> None:
    net.train(True)
    for module in net.modules():
        if is_dropout_class(type(module).__name__):
            module.eval()


def _float64_copy(net: torch.nn.Module, optimizer, loss_fn):
    """net, its optimizer (same class, settings and state: Adam's moments) and the loss, in float64; None when
    they cannot be copied (a factory's optimizer that cannot be rebuilt, a net that holds non-copyable state)."""
    try:
        net64 = copy.deepcopy(net).double()
        by_id = {id(p): p64 for p, p64 in zip(net.parameters(), net64.parameters())}
        groups = [{**{k: v for k, v in group.items() if k != "params"}, "params": [by_id[id(p)] for p in group["params"]]}
                  for group in optimizer.param_groups]
        optimizer64 = type(optimizer)(groups, **optimizer.defaults)
        optimizer64.load_state_dict(optimizer.state_dict())  # torch casts the state to the float64 parameters
        loss64 = copy.deepcopy(loss_fn).double() if isinstance(loss_fn, torch.nn.Module) else loss_fn
    except (TypeError, ValueError, RuntimeError, KeyError, copy.Error):
        return None
    return net64, optimizer64, loss64
