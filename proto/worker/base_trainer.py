"""What both frameworks' training steps share: the loss and optimizer choice, the optimizer kept across steps.

"adam" must mean one algorithm on both sides, so its constants live here once; "sgd" is plain SGD
(no momentum). A factory may hand in its own loss and optimizer (``--loss factory`` /
``--optimizer factory``). A framework trainer (pt_worker.training, ms_worker.training) subclasses
BaseTrainer and supplies the built-in losses and optimizers and the step itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from proto.codec import NamedArray
from proto.errors import BadRequest
from proto.worker.interface import TrainOptions

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
BUILTIN_LOSSES = ("mse", "cross-entropy")
DROPOUT_WORDS = ("dropout", "droppath", "drop_path", "stochasticdepth")


def is_dropout_class(class_name: str) -> bool:
    """Whether a module / cell class is a dropout (or drop-path) layer, which a training step turns off."""
    lowered = class_name.lower()
    return any(word in lowered for word in DROPOUT_WORDS)


class BaseTrainer:
    """Holds the loss and the optimizer across the steps of one run; subclasses run the step."""

    role = ""  # "pt" / "ms", for messages

    def __init__(self, net, factory_loss=None, factory_optimizer=None):
        self.net = net
        self.factory_loss = factory_loss
        self.factory_optimizer = factory_optimizer
        self._optimizer = None
        self._config: tuple | None = None

    # -- hooks -------------------------------------------------------------------------------------

    def _builtin_loss(self, name: str):
        """The framework's loss for "mse" or "cross-entropy"."""
        raise NotImplementedError

    def _trainable_parameters(self) -> list:
        raise NotImplementedError

    def _sgd(self, params: list, lr: float):
        raise NotImplementedError

    def _adam(self, params: list, lr: float):
        """torch.optim.Adam's algorithm with ADAM_BETAS and ADAM_EPS."""
        raise NotImplementedError

    def _is_optimizer(self, value) -> bool:
        """Whether the factory's optimizer is a ready optimizer (else it is called with the parameters)."""
        raise NotImplementedError

    def _step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions, loss_fn,
              optimizer) -> Iterator[NamedArray]:
        """Forward, loss, gradients and one update; yield loss, grad:, state: and moment tensors."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------

    def loss_fn(self, name: str):
        """The loss a step uses: a built-in one, or the factory's for "factory"."""
        if name in BUILTIN_LOSSES:
            return self._builtin_loss(name)
        if self.factory_loss is None:
            raise BadRequest(f"loss 'factory': the {self.role} factory supplied no loss; return "
                             "{'net': ..., 'loss': ...} from it or choose --loss mse|cross-entropy")
        return self.factory_loss

    def make_optimizer(self, options: TrainOptions):
        """A fresh optimizer over the net's trainable parameters, as options ask."""
        if options.optimizer == "sgd":
            return self._sgd(self._trainable_parameters(), options.lr)
        if options.optimizer == "adam":
            return self._adam(self._trainable_parameters(), options.lr)
        if self.factory_optimizer is not None and self._is_optimizer(self.factory_optimizer):
            return self.factory_optimizer
        if callable(self.factory_optimizer):
            return self.factory_optimizer(self._trainable_parameters())
        raise BadRequest(f"optimizer 'factory': the {self.role} factory supplied no optimizer; "
                         "choose --optimizer sgd|adam")

    def forget(self) -> None:
        """Drop the cached optimizer (its moments belong to weights that were put back)."""
        self._optimizer = None

    def optimizer_for(self, options: TrainOptions):
        """The optimizer of this run: kept across steps, rebuilt on reset or when the choice or lr changes."""
        config = (options.optimizer, options.lr)
        if options.reset or self._optimizer is None or config != self._config:
            self._optimizer, self._config = self.make_optimizer(options), config
        return self._optimizer

    def step(self, inputs: Sequence[NamedArray], target: NamedArray, options: TrainOptions) -> Iterator[NamedArray]:
        """Run one training step; yields what the coordinator compares (lazily: the step runs on the first pull)."""
        options.check()  # here too, not only where the wire is decoded: same-process workers skip that
        yield from self._step(inputs, target, options, self.loss_fn(options.loss), self.optimizer_for(options))
