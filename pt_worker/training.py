"""One training step of a torch net: loss, named gradients, updated weights and buffers, Adam moments.

Dropout policy: modules whose class name says dropout / drop-path are put in eval mode for the step
(identity), the rest of the net trains; functional dropout inside a forward is not reachable from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from proto.codec import NamedArray
from proto.errors import BadRequest
from proto.worker.base_trainer import ADAM_BETAS, ADAM_EPS, BaseTrainer, is_dropout_class
from proto.worker.interface import GRAD_PREFIX, LOSS_NAME, MOMENT_PREFIXES, STATE_PREFIX, TrainOptions
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
        self.net.train(True)
        for module in self.net.modules():
            if is_dropout_class(type(module).__name__):
                module.eval()
        optimizer.zero_grad(set_to_none=True)
        try:
            outputs = self.net(*args)
            loss = loss_fn(*self._loss_args(options.loss, outputs, target))
            loss.backward()
        except NET_ERRORS as exc:
            raise BadRequest(f"training step failed: {type(exc).__name__}: {exc}") from exc
        named = [(name, p) for name, p in self.net.named_parameters() if p.requires_grad]
        yield tensors.numpy_from_native(LOSS_NAME, loss)
        for name, param in named:
            if param.grad is not None:  # a parameter the loss does not reach has no gradient; the coordinator says so
                yield tensors.numpy_from_native(GRAD_PREFIX + name, param.grad)
        optimizer.step()
        if options.return_state:
            for name, value in self.net.state_dict(keep_vars=True).items():
                yield tensors.numpy_from_native(STATE_PREFIX + name, value)
        if options.return_moments:
            for name, param in named:
                state = optimizer.state.get(param, {})
                for prefix, key in zip(MOMENT_PREFIXES, MOMENT_KEYS):
                    if key in state:
                        yield tensors.numpy_from_native(prefix + name, state[key])

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
