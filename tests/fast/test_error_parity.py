"""The same failing call raises the same WorkerError over gRPC (WorkerClient) and in-process (LocalWorker)."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.local import LocalWorker
from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.worker.interface import TrainOptions
from tests.fast.expected import TARGET, X
from tests.fast.numpy_worker import FakeAdapter

WRONG_SHAPE = NamedArray("input0", np.zeros((2, 5), np.float32))

def _train(options: TrainOptions, inputs: list[NamedArray] | None = None):
    """A failing call: one TrainStep on inputs (X by default) with options, its stream drained."""
    inputs = inputs or [NamedArray("input0", X)]
    return lambda w: list(w.train_step(inputs, NamedArray("target", TARGET), options))


TOO_MANY = [NamedArray("input0", X), NamedArray("input1", X)]
BAD_NAME = [NamedArray("nope", np.zeros(3, np.float32))]

# (RPC, status, the failing call on a worker)
FAILING_CALLS = [
    pytest.param("Forward", "INVALID_ARGUMENT", lambda w: w.forward([WRONG_SHAPE]), id="forward on a wrong shape"),
    pytest.param("Forward", "INVALID_ARGUMENT", lambda w: w.forward(TOO_MANY), id="forward on too many inputs"),
    pytest.param("SetWeights", "INVALID_ARGUMENT", lambda w: w.set_weights(BAD_NAME), id="set_weights with a bad name"),
    pytest.param("GetWeights", "NOT_FOUND", lambda w: list(w.get_weights(["nope"])), id="get_weights, unknown name"),
    pytest.param("RunModule", "NOT_FOUND", lambda w: w.run_module("fc1", 0, False, [NamedArray("x", X)]),
                 id="run_module before record"),
    pytest.param("TrainStep", "INVALID_ARGUMENT", _train(TrainOptions(), [WRONG_SHAPE]), id="train on a wrong shape"),
    pytest.param("TrainStep", "INVALID_ARGUMENT", _train(TrainOptions(lr=0.0)), id="train with lr 0"),
    pytest.param("TrainStep", "INVALID_ARGUMENT", _train(TrainOptions(loss="hinge")), id="train with an unknown loss"),
]


class CallerBug(Exception):
    """Raised by the caller's own weight iterator."""


def _raised(call, worker) -> WorkerError:
    """The WorkerError call(worker) raises."""
    with pytest.raises(WorkerError) as info:
        call(worker)
    return info.value


def _weights_then(error: Exception):
    """A weight stream that yields one good tensor, then fails as the caller's code would."""
    yield NamedArray("fc2.bias", np.ones(3, np.float32))
    raise error


@pytest.mark.parametrize("rpc, status, call", FAILING_CALLS)
def test_a_failure_reads_the_same_in_both_modes(pt, rpc, status, call):
    remote = _raised(call, pt.client)
    local = _raised(call, LocalWorker(FakeAdapter("pytorch"), "pt"))
    assert (remote.rpc, remote.status) == (local.rpc, local.status) == (rpc, status)
    assert remote.details == f"pt worker {rpc}: {local.details}"  # the servicer names the worker and RPC
    assert (remote.worker, local.worker) == (f"pt worker at {pt.client.address}", "pt worker in this process")


def test_an_unexpected_exception_is_internal_in_both_modes(pt, monkeypatch):
    def broken(seed: int) -> None:
        raise ZeroDivisionError(f"seed {seed} broke")

    local_adapter = FakeAdapter("pytorch")
    for adapter in (pt.adapter, local_adapter):
        monkeypatch.setattr(adapter, "_fix_random", broken)
    remote = _raised(lambda w: w.seed(4), pt.client)
    local = _raised(lambda w: w.seed(4), LocalWorker(local_adapter, "pt"))
    assert (remote.rpc, remote.status) == (local.rpc, local.status) == ("Seed", "INTERNAL")
    assert local.details == "ZeroDivisionError: seed 4 broke"
    assert remote.details == f"pt worker Seed: {local.details}"


class _Loader:
    """A weight source that is an Iterable but not an Iterator (a class with __iter__)."""

    def __init__(self, error: Exception):
        self.error = error

    def __iter__(self):
        return _weights_then(self.error)


# how the caller hands its failing weight stream to set_weights
HANDINGS = {
    "generator": lambda w, bug: w.set_weights(_weights_then(bug)),
    "iterable": lambda w, bug: w.set_weights(_Loader(bug)),
    "keyword": lambda w, bug: w.set_weights(tensors=_weights_then(bug)),
}


@pytest.mark.parametrize("mode, handing", [(mode, handing) for mode in ("grpc", "local") for handing in HANDINGS])
def test_the_callers_own_iterator_error_reaches_the_caller_unchanged(pt, mode, handing):
    worker = pt.client if mode == "grpc" else LocalWorker(pt.adapter, "pt")
    bug = CallerBug("my weight loader broke")
    with pytest.raises(CallerBug) as info:
        HANDINGS[handing](worker, bug)
    assert info.value is bug
    assert worker.describe().framework == "pytorch"  # and the worker still serves
