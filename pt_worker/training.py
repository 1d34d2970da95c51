"""One training step of a torch net: loss, named gradients, updated weights and buffers, Adam moments.

Dropout policy: modules whose class name says dropout / drop-path are put in eval mode for the step
(identity), the rest of the net trains; functional dropout inside a forward is not reachable from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from proto.codec import NamedArray
from proto.errors import BadRequest
from proto.worker.interface import (
    GRAD_PREFIX,
    LOSS_NAME,
    MOMENT_PREFIXES,
    STATE_PREFIX,
    TrainOptions,
    flatten_outputs,
    is_dropout_class,
)
from pt_worker import tensors

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
TORCH_MOMENT_KEYS = ("exp_avg", "exp_avg_sq")


class TorchTrainer:
    """Holds the loss and the optimizer across the steps of one run."""

    def __init__(self, net: torch.nn.Module, device: torch.device, factory_loss=None, factory_optimizer=None):
        self.net = net
        self.device = device
        self.factory_loss = factory_loss
        self.factory_optimizer = factory_optimizer
        self._optimizer: torch.optim.Optimizer | None = None
        self._config: tuple | None = None

    def _loss_fn(self, name: str):
        if name == "mse":
            return torch.nn.MSELoss()
        if name == "cross-entropy":
            return torch.nn.CrossEntropyLoss()
        if self.factory_loss is None:
            raise BadRequest("loss 'factory': the pt factory supplied no loss; return {'net': ..., 'loss': ...} "
                             "from it or choose --loss mse|cross-entropy")
        return self.factory_loss

    def _make_optimizer(self, options: TrainOptions) -> torch.optim.Optimizer:
        params = [p for p in self.net.parameters() if p.requires_grad]
        if options.optimizer == "sgd":
            return torch.optim.SGD(params, lr=options.lr)
        if options.optimizer == "adam":
            return torch.optim.Adam(params, lr=options.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
        if isinstance(self.factory_optimizer, torch.optim.Optimizer):
            return self.factory_optimizer
        if callable(self.factory_optimizer):
            return self.factory_optimizer(params)
        raise BadRequest("optimizer 'factory': the pt factory supplied no optimizer; choose --optimizer sgd|adam")

    def _optimizer_for(self, options: TrainOptions) -> torch.optim.Optimizer:
        config = (options.optimizer, options.lr)
        if options.reset or self._optimizer is None or config != self._config:
            self._optimizer, self._config = self._make_optimizer(options), config
        return self._optimizer

    def step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions) -> Iterator[NamedArray]:
        """Run forward, loss, backward and one optimizer update; yield what the coordinator compares."""
        loss_fn = self._loss_fn(options.loss)
        optimizer = self._optimizer_for(options)
        args = [tensors.pt_from_numpy(x, self.device) for x in inputs]
        self.net.train(True)
        for module in self.net.modules():
            if is_dropout_class(type(module).__name__):
                module.eval()
        optimizer.zero_grad(set_to_none=True)
        try:
            outputs = self.net(*args)
            loss = loss_fn(*self._loss_args(options.loss, outputs, target))
            loss.backward()
        except (RuntimeError, TypeError, ValueError) as exc:
            raise BadRequest(f"training step failed: {type(exc).__name__}: {exc}") from exc
        named = [(name, p) for name, p in self.net.named_parameters() if p.requires_grad]
        yield tensors.numpy_from_pt(LOSS_NAME, loss)
        for name, param in named:
            if param.grad is not None:  # a parameter the loss does not reach has no gradient; the coordinator says so
                yield tensors.numpy_from_pt(GRAD_PREFIX + name, param.grad)
        optimizer.step()
        if options.return_state:
            for name, value in self.net.state_dict(keep_vars=True).items():
                yield tensors.numpy_from_pt(STATE_PREFIX + name, value)
        if options.return_moments:
            for name, param in named:
                state = optimizer.state.get(param, {})
                for prefix, key in zip(MOMENT_PREFIXES, TORCH_MOMENT_KEYS):
                    if key in state:
                        yield tensors.numpy_from_pt(prefix + name, state[key])

    def _loss_args(self, loss_name: str, outputs, target: NamedArray) -> tuple:
        goal = tensors.pt_from_numpy(target, self.device)
        if loss_name == "factory":
            return outputs, goal
        leaves = [value for _, value in flatten_outputs(outputs, tensors.is_pt_tensor)]
        if not leaves:
            raise BadRequest("the net returned no tensor to take a loss of")
        prediction = leaves[0]
        goal = goal.long() if loss_name == "cross-entropy" else goal.to(prediction.dtype)
        return prediction, goal
