"""The model RPCs through WorkerClient against a numpy fake served in-process, values checked with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from proto.codec import NamedArray, TensorSpec
from proto.errors import WorkerError
from proto.worker.interface import PROTOCOL_VERSION, ModuleSpec, ParameterSpec, SetWeightsResult
from tests.fast import expected
from tests.fast.expected import X

NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def _random_state(seed: int) -> dict[str, np.ndarray]:
    """New float32 values of the fake's shapes."""
    rng = np.random.default_rng(seed)
    shapes = {"fc1.weight": (8, 4), "fc1.bias": (8,), "fc2.weight": (3, 8), "fc2.bias": (3,)}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def _failure(call) -> WorkerError:
    """The WorkerError call() raises."""
    with pytest.raises(WorkerError) as info:
        call()
    return info.value


def test_describe_reports_the_fake(pt):
    description = pt.client.describe()
    assert (description.framework, description.protocol_version) == ("pytorch", PROTOCOL_VERSION)
    assert (description.model_class, description.device, description.execution_mode) == ("TinyNet", "cpu", "eager")
    assert description.model_spec == "tests.fast.numpy_worker:pytorch"
    assert (description.parameter_count, description.parameter_elements) == (4, 8 * 4 + 8 + 3 * 8 + 3)
    assert description.example_inputs == (TensorSpec("input0", "float32", (2, 4)),)
    assert description.framework_version.startswith("numpy ")


def test_list_parameters_names_each_owner(pt):
    listing = pt.client.list_parameters()
    assert [p.name for p in listing.parameters] == NAMES
    assert listing.parameters[0] == ParameterSpec("fc1.weight", "float32", (8, 4), "fc1", "Linear", True, False,
                                                  "Linear")
    assert listing.parameters[3].shape == (3,) and listing.parameters[3].local_name == "bias"
    assert listing.modules == (ModuleSpec("", "TinyNet", "TinyNet"), ModuleSpec("fc1", "Linear", "Linear"),
                               ModuleSpec("fc2", "Linear", "Linear"))


def test_get_weights_streams_the_state(pt):
    got = {t.name: t for t in pt.client.get_weights()}
    assert list(got) == NAMES
    for name, value in pt.adapter.net.params.items():
        assert got[name].dtype == "float32"
        np.testing.assert_array_equal(got[name].array, value)
    assert [t.name for t in pt.client.get_weights(["fc2.bias", "fc1.weight"])] == ["fc2.bias", "fc1.weight"]


def test_set_weights_then_forward_uses_them(pt):
    state = _random_state(5)
    result = pt.client.set_weights([NamedArray(name, value) for name, value in state.items()], strict=True)
    assert result == SetWeightsResult(loaded=4, missing=())
    np.testing.assert_array_equal(pt.adapter.net.params["fc1.weight"], state["fc1.weight"])
    (output,) = pt.client.forward([NamedArray("input0", X)]).outputs
    assert (output.name, output.dtype, output.shape) == ("output", "float32", (2, 3))
    np.testing.assert_allclose(output.array, expected.forward(state, X), rtol=1e-5, atol=1e-6)


def test_set_weights_reports_what_it_left_alone(pt):
    result = pt.client.set_weights([NamedArray("fc2.bias", np.ones(3, np.float32))])
    assert result == SetWeightsResult(loaded=1, missing=("fc1.weight", "fc1.bias", "fc2.weight"))
    np.testing.assert_array_equal(pt.adapter.net.params["fc2.bias"], np.ones(3, np.float32))


def test_strict_set_weights_refuses_a_partial_stream(pt):
    error = _failure(lambda: pt.client.set_weights([NamedArray("fc2.bias", np.ones(3, np.float32))], strict=True))
    assert error.status == "INVALID_ARGUMENT"
    assert error.details.endswith("not set: fc1.weight, fc1.bias, fc2.weight (3)")


def test_seed_fixes_the_train_mode_forward(pt):
    def train_forward(seed: int) -> np.ndarray:
        pt.client.seed(seed)
        return pt.client.forward([NamedArray("input0", X)], train_mode=True).outputs[0].array

    first, again, other = train_forward(3), train_forward(3), train_forward(4)
    evaluated = pt.client.forward([NamedArray("input0", X)]).outputs[0].array
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other) and not np.allclose(first, evaluated)
    np.testing.assert_allclose(evaluated, expected.forward(pt.adapter.net.params, X), rtol=1e-5, atol=1e-6)


def test_bad_weights_fail_once_naming_every_problem(pt):
    before = {name: value.copy() for name, value in pt.adapter.net.params.items()}
    bad = [NamedArray("fc9.weight", np.zeros((8, 4), np.float32)),
           NamedArray("fc1.weight", np.zeros((4, 8), np.float32)), NamedArray("fc1.bias", np.zeros(8, np.float64))]
    error = _failure(lambda: pt.client.set_weights(bad))
    assert (error.rpc, error.status) == ("SetWeights", "INVALID_ARGUMENT")
    assert error.details.startswith("pt worker SetWeights: 3 weight problem(s): ")
    assert "'fc9.weight' is not a parameter of the pytorch net" in error.details
    assert "'fc1.weight' has shape [4, 8], the net's is [8, 4]" in error.details
    assert "'fc1.bias' is float64, the net's is float32" in error.details
    for name, value in before.items():
        np.testing.assert_array_equal(pt.adapter.net.params[name], value)


def test_get_weights_of_an_unknown_name_is_not_found(pt):
    error = _failure(lambda: list(pt.client.get_weights(["fc1.weight", "nope"])))
    assert (error.rpc, error.status) == ("GetWeights", "NOT_FOUND")
    assert error.details == "pt worker GetWeights: 1 unknown pytorch parameter(s): nope"


def test_forward_on_a_wrong_shape_is_invalid_argument(pt):
    error = _failure(lambda: pt.client.forward([NamedArray("input0", np.zeros((2, 5), np.float32))]))
    assert (error.rpc, error.status) == ("Forward", "INVALID_ARGUMENT")
    assert "forward failed on inputs (input0 [2, 5] float32): ValueError: matmul" in error.details
