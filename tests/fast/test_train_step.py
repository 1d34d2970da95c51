"""TrainStep through the client: loss, grads and updated state equal numpy's analytic values; bad options refused."""

from __future__ import annotations

import numpy as np
import pytest

from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.worker.interface import TrainOptions
from tests.fast import expected
from tests.fast.expected import TARGET, X

NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
LR = 0.1


def _step(pt, options: TrainOptions | None = None) -> dict[str, np.ndarray]:
    """One TrainStep on X towards TARGET (lr LR by default): every streamed tensor by name, in stream order."""
    options = options or TrainOptions(lr=LR)
    results = pt.client.train_step([NamedArray("input0", X)], NamedArray("target", TARGET), options)
    return {t.name: t.array for t in results}


def _refusal(pt, options: TrainOptions) -> WorkerError:
    """The WorkerError a TrainStep with options raises."""
    with pytest.raises(WorkerError) as info:
        _step(pt, options)
    return info.value


def test_a_step_streams_loss_grads_and_updated_state(pt):
    before = {name: value.copy() for name, value in pt.adapter.net.params.items()}
    loss, grads = expected.mse_grads(before, X, TARGET)
    got = _step(pt)
    assert list(got) == ["loss", *(f"grad:{n}" for n in NAMES), *(f"state:{n}" for n in NAMES)]
    assert got["loss"].shape == () and float(got["loss"]) == pytest.approx(loss, rel=1e-5)
    for name in NAMES:
        assert got[f"grad:{name}"].dtype == np.float32
        np.testing.assert_allclose(got[f"grad:{name}"], grads[name], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got[f"state:{name}"], before[name] - LR * grads[name], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(pt.adapter.net.params[name], got[f"state:{name}"])


def test_the_next_step_starts_from_the_updated_weights(pt):
    first = _step(pt, TrainOptions(lr=LR, return_state=False))
    assert not any(name.startswith("state:") for name in first)
    loss, _ = expected.mse_grads(pt.adapter.net.params, X, TARGET)
    second = _step(pt)
    assert float(second["loss"]) == pytest.approx(loss, rel=1e-5)
    assert float(second["loss"]) < float(first["loss"])


@pytest.mark.parametrize("lr", [0.0, -0.1, float("inf"), float("nan")])
def test_a_non_positive_learning_rate_is_refused(pt, lr):
    before = pt.adapter.net.params["fc1.weight"].copy()
    error = _refusal(pt, TrainOptions(lr=lr))
    assert (error.rpc, error.status) == ("TrainStep", "INVALID_ARGUMENT")
    assert error.details == f"pt worker TrainStep: TrainStep: the learning rate must be a finite positive number, got {lr}"
    np.testing.assert_array_equal(pt.adapter.net.params["fc1.weight"], before)


def test_an_unknown_loss_is_refused(pt):
    error = _refusal(pt, TrainOptions(loss="hinge", lr=LR))
    assert (error.rpc, error.status) == ("TrainStep", "INVALID_ARGUMENT")
    assert "unknown loss 'hinge'; known: mse, cross-entropy, factory" in error.details


def test_an_optimizer_the_worker_lacks_fails_as_the_stream_starts(pt):
    error = _refusal(pt, TrainOptions(optimizer="adam", lr=LR))
    assert (error.rpc, error.status) == ("TrainStep", "INVALID_ARGUMENT")
    assert error.details == "pt worker TrainStep: optimizer 'adam': the numpy worker has only sgd"


def test_a_step_without_the_target_is_refused(pt):
    results = pt.client.train_step([NamedArray("input0", X)], NamedArray("goal", TARGET), TrainOptions(lr=LR))
    with pytest.raises(WorkerError) as info:
        list(results)
    assert info.value.status == "INVALID_ARGUMENT" and "exactly one tensor named 'target'" in info.value.details
